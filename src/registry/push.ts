/**
 * Pushing an image or an index to one or more tags. Order is what keeps a tag honest: every blob
 * first (in parallel, bounded), then each image manifest, then the index, and tags last, so a tag
 * never names a manifest whose blobs are missing.
 *
 * For each blob: HEAD, and skip it when the repository has it; else mount it from a repository of
 * the same registry known to hold it (the blob source's origins, or an earlier push of this
 * client); else upload it (upload.ts). Manifests go as their exact bytes; the registry's
 * Docker-Content-Digest is checked against ours.
 */
import { Readable } from 'node:stream';
import { ERROR_CODES, LadingError, isLadingError } from '../errors.ts';
import type { BlobSource, Image, ImageIndex } from '../image/image.ts';
import { MediaType } from '../image/mediatypes.ts';
import type { Descriptor } from '../image/types.ts';
import { safeEmit } from './events.ts';
import { discard, type HttpResponse } from './http.ts';
import { limiter, type Limiter } from './limit.ts';
import { headManifest, pullScope, pushScope, type BlobOrigin, type Repo } from './pull.ts';
import { canonicalRegistry, type ImageReference } from './reference.ts';
import { retryableStatus, sleep, type Transport } from './transport.ts';
import { BlobUploader, sessionUrl } from './upload.ts';

export interface PushResult {
  /** Digest of what the tags now name (the image manifest, or the index). */
  digest: string;
  /** Full references written, e.g. `ghcr.io/acme/app:1.2`. */
  tags: string[];
  /** Blob bytes sent over the network (re-sent bytes included). */
  bytesUploaded: number;
  /** Blobs the registry had already: not sent. */
  blobsSkipped: number;
  /** Blobs mounted from another repository of the same registry: not sent. */
  blobsMounted: number;
}

export interface PushSettings {
  concurrency: number;
  chunkSize: number;
  maxRetries: number;
}

/** Blobs this client has pushed, by registry, so later pushes can mount them. */
export class KnownBlobs {
  private readonly byRegistry = new Map<string, Map<string, Set<string>>>();

  add(registry: string, repository: string, digest: string): void {
    const reg = canonicalRegistry(registry);
    let m = this.byRegistry.get(reg);
    if (!m) this.byRegistry.set(reg, (m = new Map()));
    let repos = m.get(digest);
    if (!repos) m.set(digest, (repos = new Set()));
    repos.add(repository);
  }

  origins(registry: string, digest: string): BlobOrigin[] {
    const repos = this.byRegistry.get(canonicalRegistry(registry))?.get(digest);
    return repos ? [...repos].map((repository) => ({ registry, repository })) : [];
  }
}

interface BlobJob {
  desc: Descriptor;
  open: () => Promise<Readable>;
  origins: BlobOrigin[];
}

class PushRun {
  readonly result: PushResult;
  private readonly limit: Limiter;
  /** One promise per blob digest and repository: images of an index share layers. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly t: Transport,
    private readonly settings: PushSettings,
    private readonly known: KnownBlobs,
    digest: string,
  ) {
    this.result = { digest, tags: [], bytesUploaded: 0, blobsSkipped: 0, blobsMounted: 0 };
    this.limit = limiter(settings.concurrency);
  }

  async pushImageBlobs(target: Repo, img: Image): Promise<void> {
    const jobs: BlobJob[] = [
      { desc: img.manifest.config, open: async () => Readable.from([img.configBytes]), origins: originsOf(img.blobs, img.manifest.config.digest) },
      ...img.manifest.layers.map((desc) => ({ desc, open: () => img.blobs.open(desc), origins: originsOf(img.blobs, desc.digest) })),
    ];
    await Promise.all(jobs.map((job) => this.blobOnce(target, job)));
  }

  private blobOnce(target: Repo, job: BlobJob): Promise<void> {
    const key = `${target.repository}@${job.desc.digest}`;
    let p = this.inFlight.get(key);
    if (!p) {
      p = this.limit(() => this.pushBlob(target, job));
      this.inFlight.set(key, p);
    }
    return p;
  }

  private async pushBlob(target: Repo, job: BlobJob): Promise<void> {
    const { desc } = job;
    const event = { registry: target.registry, repository: target.repository, digest: desc.digest, size: desc.size };
    if (await blobExists(this.t, target, desc)) {
      this.result.blobsSkipped++;
      safeEmit(this.t.onEvent, { type: 'blob-skipped', ...event });
      this.known.add(target.registry, target.repository, desc.digest);
      return;
    }
    const candidates = [...job.origins, ...this.known.origins(target.registry, desc.digest)].filter(
      (o, i, all) =>
        canonicalRegistry(o.registry) === canonicalRegistry(target.registry) &&
        o.repository !== target.repository &&
        all.findIndex((x) => x.repository === o.repository) === i,
    );
    let session: { url: URL; minChunk?: number } | undefined;
    let mountScopes: string[] = [];
    for (const from of candidates.slice(0, 3)) {
      const outcome = await this.tryMount(target, desc, from);
      if (outcome === 'mounted') {
        this.result.blobsMounted++;
        safeEmit(this.t.onEvent, { type: 'blob-mounted', ...event, from: from.repository });
        this.known.add(target.registry, target.repository, desc.digest);
        return;
      }
      if (outcome) {
        // 202: the registry would not mount, but opened an upload session we can use.
        session = outcome;
        mountScopes = [pullScope(from.repository)];
        break;
      }
    }
    const uploader = new BlobUploader(this.t, target, desc, job.open, { chunkSize: this.settings.chunkSize, maxRetries: this.settings.maxRetries, scopes: mountScopes });
    const { bytesSent } = await uploader.run(session);
    this.result.bytesUploaded += bytesSent;
    this.known.add(target.registry, target.repository, desc.digest);
  }

  /** 'mounted', an upload session (202), or undefined when the attempt failed outright. */
  private async tryMount(target: Repo, desc: Descriptor, from: BlobOrigin): Promise<'mounted' | { url: URL; minChunk?: number } | undefined> {
    const query = `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from.repository)}`;
    const path = `/v2/${target.repository}/blobs/uploads/${query}`;
    let res: HttpResponse;
    try {
      res = await this.t.request({
        registry: target.registry,
        method: 'POST',
        path,
        scopes: [pushScope(target.repository), pullScope(from.repository)],
        action: `mount blob ${desc.digest} from ${from.repository} into ${target.repository}`,
        accept: (s) => s === 201 || s === 202,
      });
    } catch (err) {
      // No read access to the source, or a registry without mounts: just upload.
      if (isLadingError(err) && (err.code === ERROR_CODES.REGISTRY_AUTH || err.code === ERROR_CODES.REGISTRY)) return undefined;
      throw err;
    }
    discard(res);
    if (res.status === 201) {
      const got = res.headers.get('docker-content-digest');
      if (got && got !== desc.digest) throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${target.registry} mounted ${got} when asked for ${desc.digest}`);
      return 'mounted';
    }
    const base = new URL(path, (await this.t.endpoint(target.registry)).origin);
    return { url: sessionUrl(res.headers.get('location'), base, 'a mount request') };
  }

  async putManifest(target: Repo, identifier: string, bytes: Buffer, mediaType: string, digest: string): Promise<void> {
    const action = `push manifest ${digest} to ${target.repository}:${identifier}`;
    const scopes = [pushScope(target.repository)];
    // Registries may not see a just-written blob or manifest yet (read-after-write lag).
    const lagDelays = [250, 500, 1000, 2000, 4000];
    for (let attempt = 0; ; attempt++) {
      const res = await this.t.request({
        registry: target.registry,
        method: 'PUT',
        path: `/v2/${target.repository}/manifests/${identifier}`,
        headers: { 'content-type': mediaType },
        body: () => bytes,
        scopes,
        action,
        // Transient answers are the transport's to retry; the rest are examined here.
        accept: (s) => !retryableStatus(s),
      });
      if (res.status >= 200 && res.status < 300) {
        discard(res);
        const got = res.headers.get('docker-content-digest');
        if (got && got !== digest) throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${target.registry} stored manifest ${digest} as ${got}`);
        safeEmit(this.t.onEvent, { type: 'manifest-pushed', registry: target.registry, repository: target.repository, digest, ...(identifier.includes(':') ? {} : { tag: identifier }) });
        return;
      }
      const err = await this.t.failure({ action, scopes }, res, target.registry);
      const code = err.details.registryCode as string | undefined;
      const lag = ['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'MANIFEST_UNKNOWN'].includes(code ?? '') && (res.status === 400 || res.status === 404);
      if (lag && attempt < lagDelays.length) {
        await sleep(lagDelays[attempt]!, this.t.signal);
        continue;
      }
      // Immutable tags (ECR, Harbor, Artifact Registry) refuse a re-push; the same digest is success.
      if (!identifier.includes(':') && res.status >= 400 && res.status < 500 && res.status !== 401) {
        const current = await headManifestSettled(this.t, target, identifier, digest);
        if (current === digest) {
          safeEmit(this.t.onEvent, { type: 'manifest-pushed', registry: target.registry, repository: target.repository, digest, tag: identifier });
          return;
        }
      }
      throw err;
    }
  }
}

/** HEAD a manifest, waiting out a registry's read-after-write lag for the digest we expect. */
export async function headManifestSettled(t: Transport, repo: Repo, identifier: string, expect: string, delays = [200, 400, 800, 1600]): Promise<string | undefined> {
  for (let i = 0; ; i++) {
    const desc = await headManifest(t, repo, identifier).catch(() => undefined);
    if (desc?.digest === expect || i >= delays.length) return desc?.digest;
    await sleep(delays[i]!, t.signal);
  }
}

function originsOf(blobs: BlobSource, digest: string): BlobOrigin[] {
  try {
    return blobs.origins?.(digest) ?? [];
  } catch {
    return [];
  }
}


/**
 * Whether the repository has the blob. Some registries (ECR Public) answer HEAD with 401 to a
 * token that GET accepts: then ask with GET and drop the body.
 */
export async function blobExists(t: Transport, repo: Repo, desc: Descriptor): Promise<boolean> {
  const common = { registry: repo.registry, path: `/v2/${repo.repository}/blobs/${desc.digest}`, scopes: [pushScope(repo.repository)], accept: (s: number) => s === 200 || s === 404 };
  let res: HttpResponse;
  try {
    res = await t.request({ ...common, method: 'HEAD', action: `check blob ${desc.digest} in ${repo.repository}` });
  } catch (err) {
    if (!isLadingError(err) || err.code !== ERROR_CODES.REGISTRY_AUTH || err.details.status !== 401) throw err;
    res = await t.request({ ...common, method: 'GET', headers: { range: 'bytes=0-0' }, accept: (s) => s === 200 || s === 206 || s === 404, action: `check blob ${desc.digest} in ${repo.repository}` });
    res.body.destroy();
    return res.status !== 404;
  }
  discard(res);
  if (res.status === 404) return false;
  const length = res.headers.get('content-length');
  return length === null || Number(length) === desc.size || desc.size < 0;
}

function isIndex(item: Image | ImageIndex): item is ImageIndex {
  return 'index' in item;
}

function groupTargets(refs: ImageReference[]): { repo: Repo; tags: string[]; refs: ImageReference[] }[] {
  const groups = new Map<string, { repo: Repo; tags: string[]; refs: ImageReference[] }>();
  for (const ref of refs) {
    const key = `${canonicalRegistry(ref.registry)}/${ref.repository}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { repo: { registry: ref.registry, repository: ref.repository }, tags: [], refs: [] }));
    if (ref.tag !== undefined && !g.tags.includes(ref.tag)) g.tags.push(ref.tag);
    g.refs.push(ref);
  }
  return [...groups.values()];
}

export async function pushItem(t: Transport, item: Image | ImageIndex, refs: ImageReference[], settings: PushSettings, known: KnownBlobs): Promise<PushResult> {
  if (refs.length === 0) throw new LadingError(ERROR_CODES.USAGE, 'push needs at least one destination reference');
  const run = new PushRun(t, settings, known, item.digest);
  for (const ref of refs) {
    if (ref.digest !== undefined && ref.digest !== item.digest) {
      throw new LadingError(ERROR_CODES.USAGE, `cannot push ${item.digest} to ${ref.toString()}: the reference pins another digest`, { hint: 'drop the @digest from the destination' });
    }
  }
  const images = isIndex(item) ? item.images : [item];
  // One repository after another: a later one can mount what an earlier one received.
  for (const group of groupTargets(refs)) {
    const { repo } = group;
    await Promise.all(images.map((img) => run.pushImageBlobs(repo, img)));
    if (isIndex(item)) {
      for (const img of images) await run.putManifest(repo, img.digest, img.manifestBytes, img.manifest.mediaType ?? MediaType.OCI_MANIFEST, img.digest);
    }
    const bytes = isIndex(item) ? item.indexBytes : item.manifestBytes;
    const mediaType = isIndex(item) ? (item.index.mediaType ?? MediaType.OCI_INDEX) : (item.manifest.mediaType ?? MediaType.OCI_MANIFEST);
    const identifiers = group.tags.length > 0 ? group.tags : [item.digest];
    for (const id of identifiers) await run.putManifest(repo, id, bytes, mediaType, item.digest);
    for (const ref of group.refs) {
      const full = `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : `@${item.digest}`}`;
      if (!run.result.tags.includes(full)) run.result.tags.push(full);
    }
  }
  return run.result;
}
