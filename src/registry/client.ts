/**
 * The registry client the rest of lading uses: one object holding the HTTP connections, the
 * keychain, the tokens and what it has pushed (for later mounts), with four operations: resolve,
 * pullImage, pushImage and copy.
 */
import type { Image, ImageIndex } from '../image/image.ts';
import type { Descriptor } from '../image/types.ts';
import type { BlobStore } from '../store/blob-store.ts';
import { defaultKeychain, Keychain } from './auth/keychain.ts';
import { remoteItem, type CopyOptions } from './copy.ts';
import type { EventSink } from './events.ts';
import { createHttpClient, timeoutFromEnv, withTimeouts, type HttpClient, type HttpClientKind } from './http.ts';
import type { PlatformSpec } from './platform.ts';
import { fetchManifest, headManifest, pullImage, readBlobBytes, resolveImage, type FetchedManifest, type ResolvedImage } from './pull.ts';
import { KnownBlobs, pushItem, type PushResult } from './push.ts';
import { parseReference, type ImageReference } from './reference.ts';
import { listReferrers, pushReferrer, type ReferrerList, type ReferrersVia } from './referrers.ts';
import { Transport } from './transport.ts';
import { DEFAULT_CHUNK_SIZE } from './upload.ts';

export interface RegistryClientOptions {
  /** Where credentials come from (default: defaultKeychain()). */
  keychain?: Keychain;
  /** Hosts reached over plain http or unverified TLS (loopback hosts may use http anyway). */
  insecureRegistries?: string[];
  /** PEM file of extra certificate authorities. */
  caFile?: string;
  /** Largest request body; larger blobs are sent in chunks of this size (default 64 MiB). */
  chunkSize?: number;
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  /** Retries of a failing request before giving up (default 5). */
  maxRetries?: number;
  userAgent?: string;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** `node-fetch` (default) or `undici` (Node's fetch), or an HttpClient of your own. */
  http?: HttpClientKind | HttpClient;
  /** First backoff delay in ms (default 250); tests make it small. */
  retryBaseMs?: number;
  /** Longest backoff or Retry-After wait in ms (default 30 000). */
  retryMaxMs?: number;
  /**
   * How long a registry may stay silent (no response headers, or under 1 KiB of body per window)
   * before the request fails, in ms. Default: LADING_REGISTRY_TIMEOUT seconds, else 60 000.
   */
  timeoutMs?: number;
}

type RefInput = ImageReference | string;

function ref(r: RefInput): ImageReference {
  return typeof r === 'string' ? parseReference(r) : r;
}

export class RegistryClient {
  private readonly transport: Transport;
  private readonly http: HttpClient;
  private readonly ownsHttp: boolean;
  private readonly known = new KnownBlobs();
  private readonly settings: { concurrency: number; chunkSize: number; maxRetries: number };

  constructor(options: RegistryClientOptions = {}) {
    const concurrency = options.concurrency ?? 4;
    this.ownsHttp = typeof options.http !== 'object';
    const http = typeof options.http === 'object' ? options.http : createHttpClient(options.http ?? 'node-fetch', { caFile: options.caFile, maxSockets: concurrency * 2 + 2 });
    this.http = withTimeouts(http, options.timeoutMs ?? timeoutFromEnv());
    this.transport = new Transport({
      http: this.http,
      keychain: options.keychain ?? defaultKeychain(),
      insecureRegistries: options.insecureRegistries,
      maxRetries: options.maxRetries,
      userAgent: options.userAgent ?? 'lading',
      signal: options.signal,
      onEvent: options.onEvent,
      retryBaseMs: options.retryBaseMs,
      retryMaxMs: options.retryMaxMs,
    });
    this.settings = { concurrency, chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE, maxRetries: options.maxRetries ?? 5 };
  }

  /** The manifest and config a reference names (one platform of an index); no layers are read. */
  resolve(reference: RefInput, options: { platform?: PlatformSpec } = {}): Promise<ResolvedImage> {
    return resolveImage(this.transport, ref(reference), options.platform);
  }

  /** The manifest's descriptor if it exists, without downloading it. */
  head(reference: RefInput): Promise<Descriptor | undefined> {
    const r = ref(reference);
    return headManifest(this.transport, { registry: r.registry, repository: r.repository }, r.identifier);
  }

  /**
   * Pull an image into `store`. Its blobs read from the store; with `lazy`, a layer is fetched
   * (verified, and written to the store) the first time something opens it.
   */
  pullImage(reference: RefInput, options: { platform?: PlatformSpec; store: BlobStore; lazy?: boolean }): Promise<Image> {
    return pullImage(this.transport, ref(reference), { ...options, concurrency: this.settings.concurrency });
  }

  /** Push an image or index to every reference (tags of one or more repositories). */
  pushImage(item: Image | ImageIndex, refs: RefInput[]): Promise<PushResult> {
    return pushItem(this.transport, item, refs.map(ref), this.settings, this.known);
  }

  /** Copy between registries, streaming; mounting when both are on the same registry. */
  async copy(src: RefInput, dst: RefInput, options: CopyOptions = {}): Promise<PushResult> {
    const item = await remoteItem(this.transport, ref(src), options);
    return this.pushImage(item, [ref(dst)]);
  }

  /** A manifest or index exactly as the registry serves it, its digest checked. */
  manifest(reference: RefInput): Promise<FetchedManifest> {
    const r = ref(reference);
    return fetchManifest(this.transport, { registry: r.registry, repository: r.repository }, r.identifier);
  }

  /** A small blob (a config, an attestation) of the reference's repository, verified; at most `limit` bytes. */
  blob(reference: RefInput, desc: Descriptor, limit?: number): Promise<Buffer> {
    const r = ref(reference);
    return readBlobBytes(this.transport, { registry: r.registry, repository: r.repository }, desc, limit);
  }

  /** The referrers of a manifest in the reference's repository: the referrers API, else the fallback tag. */
  referrers(reference: RefInput, subjectDigest: string, options: { artifactType?: string } = {}): Promise<ReferrerList> {
    const r = ref(reference);
    return listReferrers(this.transport, { registry: r.registry, repository: r.repository }, subjectDigest, options);
  }

  /**
   * Push a manifest with a `subject` to the reference's repository and make it findable among the
   * subject's referrers (by the registry, or in the fallback tag's index when it has no API).
   */
  pushReferrer(reference: RefInput, artifact: Image): Promise<{ digest: string; via: ReferrersVia }> {
    const r = ref(reference);
    return pushReferrer(this.transport, { registry: r.registry, repository: r.repository }, artifact, async (item, targets) => {
      const refs = targets.map((x) => parseReference(`${x.repo.registry}/${x.repo.repository}${x.identifier.includes(':') ? '@' : ':'}${x.identifier}`));
      await pushItem(this.transport, item, refs, this.settings, this.known);
    });
  }

  /** Close idle connections. */
  close(): void {
    if (this.ownsHttp) this.http.close();
  }
}
