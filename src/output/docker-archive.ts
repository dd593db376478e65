/**
 * A `docker load` tarball: `manifest.json` and `repositories` (what every docker and podman
 * version reads), with blobs stored under `blobs/sha256/` beside an OCI `index.json` and
 * `oci-layout`, as `docker save` writes them since Docker 25. Written to a temporary file and
 * renamed, so a failed write leaves nothing behind.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import { digestHex } from '../image/digest.ts';
import type { Image } from '../image/image.ts';
import { descriptorOf } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import { writeArchive } from './archive.ts';
import { REF_NAME_ANNOTATION } from './oci-layout.ts';

export interface DockerArchiveOptions {
  /** Tags as `name:tag` (docker.io names may be written in their short form). */
  tags: string[];
}

export async function writeDockerArchive(file: string, image: Image, options: DockerArchiveOptions): Promise<void> {
  const blobName = (digest: string): string => `blobs/sha256/${digestHex(digest)}`;
  const repoTags = options.tags.map(normalizeTag);
  await writeArchive(file, async (w) => {
    for (const layer of image.manifest.layers) await w.addBlob(blobName(layer.digest), layer, image.blobs);
    await w.addBytes(blobName(image.manifest.config.digest), image.configBytes);
    await w.addBytes(blobName(image.digest), image.manifestBytes);
    const desc = descriptorOf(image);
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: repoTags.length
        ? repoTags.map((t) => ({ ...desc, annotations: { 'io.containerd.image.name': t, [REF_NAME_ANNOTATION]: t.slice(t.lastIndexOf(':') + 1) } }))
        : [desc],
    };
    await w.addBytes('index.json', canonicalBytes(index));
    const manifestJson = [{ Config: blobName(image.manifest.config.digest), RepoTags: repoTags, Layers: image.manifest.layers.map((l) => blobName(l.digest)) }];
    await w.addBytes('manifest.json', Buffer.from(JSON.stringify(manifestJson)));
    await w.addBytes('oci-layout', canonicalBytes({ imageLayoutVersion: '1.0.0' }));
    // The legacy `repositories` file maps each name to its top layer's id.
    const repositories: Record<string, Record<string, string>> = {};
    const topLayer = image.config.rootfs.diff_ids.at(-1);
    for (const t of repoTags) {
      const i = t.lastIndexOf(':');
      if (topLayer) (repositories[t.slice(0, i)] ??= {})[t.slice(i + 1)] = digestHex(topLayer);
    }
    if (Object.keys(repositories).length > 0) await w.addBytes('repositories', Buffer.from(JSON.stringify(repositories)));
  });
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
