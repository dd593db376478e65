/**
 * A `docker load` tarball: `manifest.json` and `repositories` (what every docker and podman
 * version reads), with blobs stored under `blobs/sha256/` beside an OCI `index.json` and
 * `oci-layout`, as `docker save` writes them since Docker 25. Written to a temporary file and
 * renamed, so a failed write leaves nothing behind.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { digestHex } from '../image/digest.ts';
import type { Image } from '../image/image.ts';
import { descriptorOf } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import { REF_NAME_ANNOTATION } from './oci-layout.ts';

export interface DockerArchiveOptions {
  /** Tags as `name:tag` (docker.io names may be written in their short form). */
  tags: string[];
}

type Header = Parameters<tar.Pack['entry']>[0];

const entryHeader = (name: string, size: number, type: 'file' | 'directory' = 'file'): Header => ({
  name,
  size,
  type,
  mode: type === 'directory' ? 0o40755 : 0o100644,
  uid: 0,
  gid: 0,
  mtime: new Date(0),
});

export async function writeDockerArchive(file: string, image: Image, options: DockerArchiveOptions): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const pack = tar.pack();
  const done = (async () => {
    await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
    await pipeline(pack as unknown as NodeJS.ReadableStream, createWriteStream(tmp));
  })();
  try {
    const add = (header: Header, body?: Buffer): Promise<void> =>
      new Promise((resolve, reject) => pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    await add(entryHeader('blobs', 0, 'directory'));
    await add(entryHeader('blobs/sha256', 0, 'directory'));
    const blobName = (digest: string): string => `blobs/sha256/${digestHex(digest)}`;
    const written = new Set<string>();
    for (const layer of image.manifest.layers) {
      if (written.has(layer.digest)) continue;
      written.add(layer.digest);
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry(entryHeader(blobName(layer.digest), layer.size), (err) => (err ? reject(err) : resolve()));
        image.blobs
          .open(layer)
          .then(async (input) => {
            for await (const chunk of input as AsyncIterable<Buffer>) {
              if (!sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', r));
            }
            sink.end(undefined);
          })
          .catch((err: unknown) => {
            sink.destroy(err as Error);
            reject(err);
          });
      });
    }
    await add(entryHeader(blobName(image.manifest.config.digest), image.configBytes.length), image.configBytes);
    await add(entryHeader(blobName(image.digest), image.manifestBytes.length), image.manifestBytes);

    const repoTags = options.tags.map(normalizeTag);
    const manifestJson = [
      {
        Config: blobName(image.manifest.config.digest),
        RepoTags: repoTags,
        Layers: image.manifest.layers.map((l) => blobName(l.digest)),
      },
    ];
    const repositories: Record<string, Record<string, string>> = {};
    const topLayer = image.config.rootfs.diff_ids.at(-1);
    for (const t of repoTags) {
      const i = t.lastIndexOf(':');
      if (topLayer) (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = digestHex(topLayer);
    }
    const desc = descriptorOf(image);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: repoTags.length
        ? repoTags.map((t) => ({ ...desc, annotations: { 'io.containerd.image.name': t, [REF_NAME_ANNOTATION]: t.slice(t.lastIndexOf(':') + 1) } }))
        : [desc],
    };
    await add(entryHeader('index.json', canonicalBytes(index).length), canonicalBytes(index));
    await add(entryHeader('manifest.json', Buffer.byteLength(JSON.stringify(manifestJson))), Buffer.from(JSON.stringify(manifestJson)));
    await add(entryHeader('oci-layout', canonicalBytes({ imageLayoutVersion: '1.0.0' }).length), canonicalBytes({ imageLayoutVersion: '1.0.0' }));
    if (Object.keys(repositories).length > 0) {
      const repos = Buffer.from(JSON.stringify(repositories));
      await add(entryHeader('repositories', repos.length), repos);
    }
    pack.finalize();
    await done;
    await fs.rename(tmp, file);
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    await fs.rm(tmp, { force: true });
    if (err instanceof LadingError) throw err;
    throw fsError(ERROR_CODES.OUTPUT, 'write the docker archive', file, err);
  }
}

/** `name` → `name:latest`; `docker.io/library/x` → `x` as docker itself records it. */
export function normalizeTag(tag: string): string {
  let t = tag;
  const lastSlash = t.lastIndexOf('/');
  if (t.lastIndexOf(':') <= lastSlash) t = `${t}:latest`;
  t = t.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
  if (!/^[a-z0-9]/.test(t)) throw new LadingError(ERROR_CODES.USAGE, `invalid tag "${tag}"`);
  return t;
}
