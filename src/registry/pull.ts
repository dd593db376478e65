/**
 * Reading from a registry: manifests (with the Accept list every registry understands), platform
 * selection from an index, and blobs streamed and verified, into the store or straight to a
 * consumer. A blob whose bytes do not match its digest is an error and leaves nothing behind.
 */
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { sha256 } from '../image/digest.ts';
import type { BlobSource, Image } from '../image/image.ts';
import { MediaType, isIndexMediaType } from '../image/mediatypes.ts';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.ts';
import { verifyingStream, type BlobStore } from '../store/blob-store.ts';
import { rate, safeEmit } from './events.ts';
import { discard, readBody } from './http.ts';
import { limiter } from './limit.ts';
import { hostPlatform, selectPlatform, type PlatformSpec } from './platform.ts';
import type { ImageReference } from './reference.ts';
import type { Transport } from './transport.ts';

/** Every manifest type we read, so registries never fall back to schema 1. */
export const MANIFEST_ACCEPT = [MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST, MediaType.DOCKER_MANIFEST].join(', ');

/** The spec lets registries refuse manifests over 4 MiB; we refuse to read more. */
const MANIFEST_LIMIT = 4 * 1024 * 1024;

export interface Repo {
  registry: string;
  repository: string;
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  descriptor: Descriptor;
  doc: Manifest | Index;
}

export async function fetchManifest(t: Transport, repo: Repo, identifier: string): Promise<FetchedManifest> {
  const res = await t.request({
    registry: repo.registry,
    method: 'GET',
    path: `/v2/${repo.repository}/manifests/${identifier}`,
    headers: { accept: MANIFEST_ACCEPT },
    scopes: [pullScope(repo.repository)],
    action: `get manifest ${repo.repository}:${identifier}`,
  });
  const bytes = await readBody(res, MANIFEST_LIMIT);
  const digest = sha256(bytes);
  const claimed = res.headers.get('docker-content-digest');
  const expected = identifier.includes(':') ? identifier : claimed?.startsWith('sha256:') ? claimed : undefined;
  if (expected && expected !== digest) {
    throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `manifest ${repo.registry}/${repo.repository}@${expected} does not match its digest (got ${digest})`, {
      hint: 'the registry (or a proxy in between) altered the manifest',
    });
  }
  let doc: Manifest | Index;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Manifest | Index;
  } catch {
    throw new LadingError(ERROR_CODES.IMAGE, `manifest ${repo.repository}:${identifier} from ${repo.registry} is not JSON`);
  }
  const mediaType = doc.mediaType ?? res.headers.get('content-type')?.split(';')[0]?.trim() ?? ('manifests' in doc ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST);
  if ((doc as { schemaVersion?: number }).schemaVersion !== 2) {
    throw new LadingError(ERROR_CODES.IMAGE, `${repo.registry}/${repo.repository}:${identifier} is a schema ${String((doc as { schemaVersion?: number }).schemaVersion)} manifest`, {
      hint: 'only Docker schema 2 and OCI images are supported; re-push the image with a current tool',
    });
  }
  return { bytes, digest, mediaType, doc, descriptor: { mediaType, digest, size: bytes.length } };
}

/** The descriptor of a manifest if it exists (HEAD), undefined on 404. */
export async function headManifest(t: Transport, repo: Repo, identifier: string): Promise<Descriptor | undefined> {
  const res = await t.request({
    registry: repo.registry,
    method: 'HEAD',
    path: `/v2/${repo.repository}/manifests/${identifier}`,
    headers: { accept: MANIFEST_ACCEPT },
    scopes: [pullScope(repo.repository)],
    action: `check manifest ${repo.repository}:${identifier}`,
    accept: (s) => s === 200 || s === 404,
  });
  discard(res);
  if (res.status === 404) return undefined;
  const digest = res.headers.get('docker-content-digest');
  if (!digest) return undefined;
  return { mediaType: res.headers.get('content-type') ?? MediaType.OCI_MANIFEST, digest, size: Number(res.headers.get('content-length') ?? 0) };
}

export interface ResolvedImage {
  /** The image manifest's descriptor (with its platform when it came from an index). */
  descriptor: Descriptor;
  manifest: Manifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
  /** The index the reference named, when it named one. */
  index?: { index: Index; indexBytes: Buffer; descriptor: Descriptor };
}

export async function resolveImage(t: Transport, ref: ImageReference, platform: PlatformSpec | undefined): Promise<ResolvedImage> {
  const repo = { registry: ref.registry, repository: ref.repository };
  const root = await fetchManifest(t, repo, ref.identifier);
  let image = root;
  let index: ResolvedImage['index'];
  if (isIndexMediaType(root.mediaType) || 'manifests' in root.doc) {
    const idx = root.doc as Index;
    const chosen = selectPlatform(idx.manifests, platform ?? hostPlatform(), `${ref.toString()}`);
    image = await fetchManifest(t, repo, chosen.digest);
    if (image.digest !== chosen.digest) throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `manifest ${chosen.digest} does not match its digest`);
    index = { index: idx, indexBytes: root.bytes, descriptor: root.descriptor };
    image.descriptor = { ...image.descriptor, ...(chosen.platform ? { platform: chosen.platform } : {}) };
  }
  if ('manifests' in image.doc) throw new LadingError(ERROR_CODES.IMAGE, `${ref.toString()} names an index inside an index, which lading does not follow`);
  const manifest = image.doc as Manifest;
  const configBytes = await readBlobBytes(t, repo, manifest.config);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch {
    throw new LadingError(ERROR_CODES.IMAGE, `the config of ${ref.toString()} is not JSON`);
  }
  return { descriptor: image.descriptor, manifest, manifestBytes: image.bytes, config, configBytes, ...(index ? { index } : {}) };
}

/** A blob's bytes from the registry, streamed and verified; fails past `desc.size`. */
export async function openRemoteBlob(t: Transport, repo: Repo, desc: Descriptor): Promise<Readable> {
  const res = await t.request({
    registry: repo.registry,
    method: 'GET',
    path: `/v2/${repo.repository}/blobs/${desc.digest}`,
    scopes: [pullScope(repo.repository)],
    action: `download blob ${desc.digest} from ${repo.repository}`,
  });
  let received = 0;
  const started = performance.now();
  const where = `blob ${desc.digest} from ${repo.registry}/${repo.repository}`;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      received += chunk.length;
      if (desc.size >= 0 && received > desc.size) {
        cb(new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${where} is longer than its ${desc.size} bytes`));
        return;
      }
      safeEmit(t.onEvent, { type: 'blob-download-progress', registry: repo.registry, repository: repo.repository, digest: desc.digest, received, size: desc.size, bytesPerSecond: rate(received, started) });
      cb(null, chunk);
    },
    flush(cb) {
      if (received === desc.size) safeEmit(t.onEvent, { type: 'blob-downloaded', registry: repo.registry, repository: repo.repository, digest: desc.digest, size: desc.size });
      cb();
    },
  });
  // pipeline passes an error on any side to the reader, and a reader giving up closes the response.
  return pipeline(res.body, counter, verifyingStream(desc.digest, where), () => {});
}

export async function readBlobBytes(t: Transport, repo: Repo, desc: Descriptor, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const stream = await openRemoteBlob(t, repo, desc);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    size += (c as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw new LadingError(ERROR_CODES.IMAGE, `blob ${desc.digest} is larger than ${limit} bytes where a document was expected`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Where a blob can also be found, for cross-repository mounts. */
export interface BlobOrigin {
  registry: string;
  repository: string;
}

/**
 * The blobs of a pulled image: from the store when there, else (lazily) from the registry,
 * verified and written to the store on the way. Knows where the blobs came from, for mounts.
 */
export class RegistryBlobSource implements BlobSource {
  constructor(
    private readonly t: Transport,
    private readonly repo: Repo,
    private readonly store?: BlobStore,
  ) {}

  async open(desc: Descriptor): Promise<Readable> {
    if (this.store && (await this.store.has(desc.digest))) return this.store.openRead(desc.digest);
    const remote = await openRemoteBlob(this.t, this.repo, desc);
    return this.store ? teeIntoStore(remote, this.store, desc) : remote;
  }

  async read(desc: Descriptor): Promise<Buffer> {
    if (this.store && (await this.store.has(desc.digest))) return this.store.readBytes(desc.digest);
    const bytes = await readBlobBytes(this.t, this.repo, desc);
    if (this.store) await this.store.putBytes(bytes, desc.digest);
    return bytes;
  }

  origins(_digest: string): BlobOrigin[] {
    return [{ registry: this.repo.registry, repository: this.repo.repository }];
  }
}

/** Pass `remote` through to the reader while writing it to the store; published only if verified. */
function teeIntoStore(remote: Readable, store: BlobStore, desc: Descriptor): Readable {
  const writerReady = store.createWriter();
  let committed = false;
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      writerReady.then((w) => {
        if (w.stream.write(chunk)) cb(null, chunk);
        else w.stream.once('drain', () => cb(null, chunk));
      }, cb);
    },
    flush(cb: TransformCallback) {
      writerReady
        .then((w) => w.commit({ digest: desc.digest, size: desc.size }))
        .then(() => {
          committed = true;
          cb();
        }, cb);
    },
    destroy(err, cb) {
      if (!committed) writerReady.then((w) => w.abort()).catch(() => {});
      cb(err);
    },
  });
  return pipeline(remote, tee, () => {});
}

export interface PullOptions {
  platform?: PlatformSpec;
  store: BlobStore;
  /** Fetch layers only when something opens them (default: download all now). */
  lazy?: boolean;
  concurrency?: number;
}

export async function pullImage(t: Transport, ref: ImageReference, options: PullOptions): Promise<Image> {
  const resolved = await resolveImage(t, ref, options.platform);
  const repo = { registry: ref.registry, repository: ref.repository };
  const { store } = options;
  await store.putBytes(resolved.configBytes, resolved.manifest.config.digest);
  await store.putBytes(resolved.manifestBytes, resolved.descriptor.digest);
  const blobs = new RegistryBlobSource(t, repo, store);
  if (!options.lazy) {
    const limit = limiter(options.concurrency ?? 4);
    const unique = [...new Map(resolved.manifest.layers.map((l) => [l.digest, l])).values()];
    await Promise.all(
      unique.map((layer) =>
        limit(async () => {
          if (await store.has(layer.digest)) return;
          await store.putStream(await openRemoteBlob(t, repo, layer), { digest: layer.digest, size: layer.size });
        }),
      ),
    );
  }
  return {
    manifest: resolved.manifest,
    manifestBytes: resolved.manifestBytes,
    digest: resolved.descriptor.digest,
    config: resolved.config,
    configBytes: resolved.configBytes,
    blobs,
  };
}
