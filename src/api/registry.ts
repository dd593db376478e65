/**
 * Registry access for the library: one client per call, configured from the caller's options,
 * its progress forwarded as BuildEvents. Also the transfer commands: push an OCI folder, pull an
 * image into one, inspect a reference, copy between registries.
 */
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { BuildEvent } from '../engine/events.ts';
import type { Image, ImageIndex } from '../image/image.ts';
import { hostPlatform, parsePlatform, platformToString } from '../image/platform.ts';
import type { ImageConfig, Index, Manifest, Platform } from '../image/types.ts';
import { readOciLayoutItem, writeOciLayout } from '../output/oci-layout.ts';
import { parseReference } from '../registry/reference.ts';
import type { CredentialInput, PushResult, RegistryClient } from '../registry/index.ts';
import { BlobStore } from '../store/blob-store.ts';
import { defaultCacheDir } from './build.ts';
import { cancellable } from './cancel.ts';

export interface RegistryOptions {
  /** Hosts to reach over plain http or unverified TLS (loopback hosts may always use http). */
  insecureRegistries?: string[];
  /** PEM file of extra certificate authorities for registries. */
  registryCa?: string;
  /** Largest upload request; larger blobs are sent in chunks (default 64 MiB). */
  chunkSize?: number;
  /** Credentials by registry host, tried before every other source. */
  credentials?: Record<string, CredentialInput>;
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
}

/**
 * A registry client, made on first use: the HTTP stack is a good part of lading's start-up time,
 * and most builds (an OCI folder from local bases, a no-op rebuild) never talk to a registry.
 * Every method but `close` is asynchronous, so the returned object can load it behind the scenes.
 */
export function registryClient(options: RegistryOptions, onEvent: ((e: BuildEvent) => void) | undefined, signal?: AbortSignal): RegistryClient {
  let made: RegistryClient | undefined;
  let making: Promise<RegistryClient> | undefined;
  const make = async (): Promise<RegistryClient> => {
    const { RegistryClient: Client, defaultKeychain } = await import('../registry/index.ts');
    made = new Client({
      keychain: defaultKeychain({ credentials: options.credentials }),
      insecureRegistries: options.insecureRegistries,
      caFile: options.registryCa,
      chunkSize: options.chunkSize,
      concurrency: options.concurrency,
      signal,
      onEvent: onEvent ? (event) => onEvent({ type: 'registry', event }) : undefined,
    });
    return made;
  };
  return new Proxy({} as RegistryClient, {
    get(_target, prop) {
      if (prop === 'close') return () => made?.close();
      if (prop === 'then') return undefined; // not a thenable
      return async (...args: unknown[]) => {
        const client = made ?? (await (making ??= make()));
        // The method is looked up by name on the real client: a proxy over its whole surface.
        const method = (client as unknown as Record<string | symbol, (...a: unknown[]) => unknown>)[prop];
        return method.apply(client, args);
      };
    },
  });
}

export interface TransferOptions extends RegistryOptions {
  /** Cancels the transfer: it rejects with `INTERRUPTED` and tags nothing it had not finished. */
  signal?: AbortSignal;
  /** Progress: `{ type: 'registry', event }` for every blob and manifest moved, skipped or retried. */
  onEvent?: (event: BuildEvent) => void;
}

/** Push an image (or an OCI layout folder, optionally `DIR:TAG`) to one or more references. */
export async function push(source: Image | ImageIndex | string, refs: string[], options: TransferOptions = {}): Promise<PushResult> {
  return cancellable(options.signal, 'push', async () => {
    if (refs.length === 0) throw new LadingError(ERROR_CODES.USAGE, 'push needs at least one destination reference', { hint: 'name it like registry.example.com/team/app:1.0' });
    const item = typeof source === 'string' ? await readLayoutArgument(source) : source;
    const client = registryClient(options, options.onEvent, options.signal);
    try {
      return await client.pushImage(item, refs.map((r) => parseReference(r)));
    } finally {
      client.close();
    }
  });
}

/** `DIR`, `DIR:TAG` or `DIR@DIGEST` of an OCI layout folder: an image, or an index with all its images. */
async function readLayoutArgument(spec: string): Promise<Image | ImageIndex> {
  const at = spec.lastIndexOf('@');
  const colon = spec.lastIndexOf(':');
  if (at > spec.lastIndexOf('/')) return readOciLayoutItem(path.resolve(spec.slice(0, at)), { digest: spec.slice(at + 1) });
  if (colon > spec.lastIndexOf('/')) return readOciLayoutItem(path.resolve(spec.slice(0, colon)), { refName: spec.slice(colon + 1) });
  return readOciLayoutItem(path.resolve(spec));
}

export interface PullOptions extends TransferOptions {
  /** `os/arch[/variant]` to choose from an index (default this machine's). */
  platform?: string;
  /** Write the image into this OCI layout folder. */
  dest?: string;
  /** The store the blobs go to (default the build cache). */
  cacheDir?: string;
}

export interface PullResult {
  /** The digest of the image manifest pulled (the platform's, for an index). */
  digest: string;
  /** The image, reading its blobs from the store. */
  image: Image;
  /** The reference in full form, e.g. `docker.io/library/busybox:latest`. */
  reference: string;
}

/** Pull an image into the store (and, with `dest`, into an OCI layout folder tagged with its reference). */
export async function pull(reference: string, options: PullOptions = {}): Promise<PullResult> {
  return cancellable(options.signal, 'pull', async () => {
    const ref = parseReference(reference);
    const store = await BlobStore.open(options.cacheDir ?? defaultCacheDir());
    const client = registryClient(options, options.onEvent, options.signal);
    try {
      const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
      const image = await client.pullImage(ref, { platform, store, lazy: false });
      if (options.dest) await writeOciLayout(path.resolve(options.dest), [{ item: image, refName: ref.tag ?? 'latest' }]);
      return { digest: image.digest, image, reference: ref.toString() };
    } finally {
      client.close();
    }
  });
}

export interface InspectResult {
  /** The reference in full form. */
  reference: string;
  /** The manifest (of the platform chosen from an index). */
  digest: string;
  /** The image manifest. */
  manifest: Manifest;
  /** The image config (environment, entrypoint, labels, history, ...). */
  config: ImageConfig;
  /** The index the reference names, when it names one. */
  index?: Index;
  /** The digest of that index. */
  indexDigest?: string;
  /** The platforms the reference offers (`os/arch[/variant]`). */
  platforms: string[];
}

/** What a reference names, without downloading any layer. */
export async function inspect(reference: string, options: TransferOptions & { platform?: string } = {}): Promise<InspectResult> {
  const ref = parseReference(reference);
  const client = registryClient(options, options.onEvent, options.signal);
  try {
    const platform: Platform | undefined = options.platform ? parsePlatform(options.platform) : undefined;
    const r = await client.resolve(ref, { platform });
    const result: InspectResult = {
      reference: ref.toString(),
      digest: r.descriptor.digest,
      manifest: r.manifest,
      config: r.config,
      platforms: r.index ? r.index.index.manifests.filter((d) => d.platform && d.platform.os !== 'unknown').map((d) => platformToString(d.platform!)) : [platformToString({ os: r.config.os, architecture: r.config.architecture, ...(r.config.variant ? { variant: r.config.variant } : {}) })],
    };
    if (r.index) {
      result.index = r.index.index;
      result.indexDigest = r.index.descriptor.digest;
    }
    return result;
  } finally {
    client.close();
  }
}

/** Copy an image (or with `allPlatforms`, a whole index) between registries, streaming. */
export async function copy(source: string, destination: string, options: TransferOptions & { allPlatforms?: boolean; platform?: string } = {}): Promise<PushResult> {
  return cancellable(options.signal, 'copy', async () => {
    const client = registryClient(options, options.onEvent, options.signal);
    try {
      return await client.copy(parseReference(source), parseReference(destination), {
        allPlatforms: options.allPlatforms,
        ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      });
    } finally {
      client.close();
    }
  });
}
