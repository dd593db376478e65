/**
 * `build()`: the library's main entry. Wires the folders together: reads the Dockerfile and
 * context, opens the store, runs the engine, and writes the outputs.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { sha256 } from '../image/digest.ts';
import { BuildContext } from '../context/context.ts';
import { IgnoreMatcher, readDockerignore } from '../context/dockerignore.ts';
import { StatCache } from '../context/stat-cache.ts';
import type { BuildEvent } from '../engine/events.ts';
import { runBuild, type StepReport } from '../engine/build.ts';
import type { Image } from '../image/image.ts';
import { assembleImage, layersOf } from '../image/mutate.ts';
import type { Compression, ImageFormat } from '../image/mediatypes.ts';
import { hostPlatform, parsePlatform, platformToString } from '../image/platform.ts';
import type { Platform } from '../image/types.ts';
import { writeDockerArchive } from '../output/docker-archive.ts';
import { readOciLayoutImage, writeOciLayout } from '../output/oci-layout.ts';
import { BlobStore } from '../store/blob-store.ts';
import { parseReference, type PushResult, type RegistryClient } from '../registry/index.ts';
import { registryClient, type RegistryOptions } from './registry.ts';
import { RegistryCache, exportCache, parseCacheSpec } from './remote-cache.ts';
import { CacheIndex } from '../store/cache-index.ts';

/** Where a build's image goes. */
export type OutputSpec =
  | { type: 'oci'; dest: string }
  | { type: 'docker'; dest: string }
  /** Push to every tag (`--push`). */
  | { type: 'registry' };

export interface BuildOptions extends RegistryOptions {
  /** The build context folder. */
  context: string;
  /** The Dockerfile (default `Dockerfile` in the context). */
  file?: string;
  /** Image names (`name:tag`), used by outputs that record names. */
  tags?: string[];
  buildArgs?: Record<string, string>;
  /** Build this stage (by name) instead of the last one. */
  target?: string;
  /** `os/arch[/variant]`; defaults to this machine's. */
  platform?: string;
  outputs?: OutputSpec[];
  /** Push the image to every tag (the same as an output of type registry). */
  push?: boolean;
  /**
   * Named contexts: `name` → `oci-layout://DIR[:TAG|@DIGEST]` or `docker-image://REF`, usable in
   * FROM and COPY --from in place of an image of that name.
   */
  buildContexts?: Record<string, string>;
  /** Folder of the blob store and cache; default $LADING_CACHE_DIR or $XDG_CACHE_HOME/lading. */
  cacheDir?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  /** Say, for every step that misses the cache, what changed since it last ran. */
  explain?: boolean;
  /** Shared caches to read, in order: `type=registry,ref=REPO[:TAG]` or `REPO[:TAG]`. */
  cacheFrom?: string[];
  /** Shared caches to write: `type=registry,ref=REPO[:TAG][,mode=min|max]`. */
  cacheTo?: string[];
  /** kaniko's short form: read and write the shared cache in REPO. */
  cacheRepo?: string;
  compression?: Compression;
  compressionLevel?: number;
  format?: ImageFormat;
  /** Clamp every timestamp to this (seconds); default SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number;
  /** Labels added to the final image's config. */
  labels?: Record<string, string>;
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export interface BuildResult {
  /** The manifest digest. */
  digest: string;
  image: Image;
  /** Compressed bytes of config and layers. */
  size: number;
  tags: string[];
  platform: string;
  steps: StepReport[];
  warnings: string[];
  /** Context files whose content had to be read (0 when the stat cache knew them all). */
  contentReads: number;
  /** What each push did (one result per registry output). */
  pushed: PushResult[];
  /** Entries written to each --cache-to (and how many were there already). */
  cacheExported: { ref: string; written: number; existing: number }[];
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LADING_CACHE_DIR) return path.resolve(env.LADING_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'lading');
}

export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw)) {
    throw new LadingError(ERROR_CODES.USAGE, `SOURCE_DATE_EPOCH must be a whole number of seconds, not "${raw}"`);
  }
  return Number(raw);
}

export async function build(options: BuildOptions): Promise<BuildResult> {
  const outputs = [...(options.outputs ?? [])];
  if (options.push && !outputs.some((o) => o.type === 'registry')) outputs.push({ type: 'registry' });
  const tags = options.tags ?? [];
  if (outputs.some((o) => o.type === 'registry') && tags.length === 0) {
    throw new LadingError(ERROR_CODES.USAGE, 'pushing needs at least one tag', { hint: 'name the image with -t REGISTRY/REPOSITORY:TAG' });
  }
  const inputs = await readInputs(options);
  const client = registryClient(options, options.onEvent, options.signal);
  const cacheFrom = [...(options.cacheFrom ?? []), ...(options.cacheRepo ? [options.cacheRepo] : [])].map((c) => parseCacheSpec(c, '--cache-from'));
  const cacheTo = [...(options.cacheTo ?? []), ...(options.cacheRepo ? [options.cacheRepo] : [])].map((c) => parseCacheSpec(c, '--cache-to'));
  try {
    const result = await runBuild({
      dockerfile: inputs.dockerfile,
      context: inputs.context,
      store: inputs.store,
      cache: new CacheIndex(inputs.cacheDir),
      buildArgs: new Map(Object.entries(options.buildArgs ?? {})),
      target: options.target,
      platform: inputs.platform,
      buildPlatform: hostPlatform(),
      resolveImage: (ref, p) => resolveImage(ref, p, { buildContexts: options.buildContexts ?? {}, client, store: inputs.store }),
      layer: { compression: options.compression ?? 'gzip', level: options.compressionLevel ?? 6, epoch: options.sourceDateEpoch ?? sourceDateEpoch() },
      format: options.format,
      noCache: options.noCache,
      noCacheFilter: options.noCacheFilter,
      explain: options.explain,
      remoteCache: cacheFrom.length > 0 ? new RegistryCache(client, inputs.store, cacheFrom) : undefined,
      signal: options.signal,
      onEvent: options.onEvent,
    });
    await inputs.statCache.save();
    const cacheExported: BuildResult['cacheExported'] = [];
    for (const location of cacheTo) {
      const entries = result.cacheEntries.filter((e) => location.mode === 'max' || e.inFinalImage);
      const r = await exportCache(client, location, entries, result.blobs);
      cacheExported.push({ ref: `${location.repository.registry}/${location.repository.repository}:${location.prefix}-*`, ...r });
    }
    const image = withLabels(result.image, options);
    const pushed = await writeOutputs(image, outputs, tags, client, options);
    return {
      digest: image.digest,
      image,
      size: image.manifest.config.size + image.manifest.layers.reduce((n, l) => n + l.size, 0),
      tags,
      platform: platformToString(inputs.platform),
      steps: result.steps,
      warnings: result.warnings,
      contentReads: inputs.statCache.contentReads,
      pushed,
      cacheExported,
    };
  } finally {
    client.close();
  }
}

/** The Dockerfile, the context (with .dockerignore and the stat cache), the store, the platform. */
async function readInputs(options: BuildOptions) {
  const contextDir = path.resolve(options.context);
  const dockerfilePath = options.file ? path.resolve(options.file) : path.join(contextDir, 'Dockerfile');
  let text: string;
  try {
    text = await fs.readFile(dockerfilePath, 'utf8');
  } catch (err) {
    throw fsError(ERROR_CODES.DOCKERFILE_PARSE, 'read the Dockerfile', dockerfilePath, err, 'name it with -f, or put a Dockerfile in the context folder');
  }
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const store = await BlobStore.open(cacheDir);
  const statCache = await StatCache.load(path.join(cacheDir, 'statcache', `${sha256(contextDir).slice(7, 23)}.json`));
  const ignore = new IgnoreMatcher(await readDockerignore(contextDir, dockerfilePath));
  const context = await BuildContext.open(contextDir, { ignore, statCache });
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  return { dockerfile: { text, path: options.file ?? 'Dockerfile' }, context, store, statCache, cacheDir, platform };
}

/** `--label`s land in the final config (the one place after the build an image changes). */
function withLabels(image: Image, options: BuildOptions): Image {
  if (!options.labels || Object.keys(options.labels).length === 0) return image;
  const config = { ...image.config, config: { ...image.config.config, Labels: { ...(image.config.config?.Labels ?? {}), ...options.labels } } };
  return assembleImage({ config, layers: layersOf(image), format: options.format, blobs: image.blobs });
}

async function writeOutputs(image: Image, outputs: OutputSpec[], tags: string[], client: RegistryClient, options: BuildOptions): Promise<PushResult[]> {
  const pushed: PushResult[] = [];
  for (const output of outputs) {
    if (output.type === 'oci') {
      const dest = path.resolve(output.dest);
      await writeOciLayout(dest, tags.length > 0 ? tags.map((t) => ({ item: image, refName: t })) : [{ item: image }]);
      options.onEvent?.({ type: 'output', kind: 'oci', dest, digest: image.digest });
    } else if (output.type === 'docker') {
      const dest = path.resolve(output.dest);
      await writeDockerArchive(dest, image, { tags });
      options.onEvent?.({ type: 'output', kind: 'docker', dest, digest: image.digest });
    } else {
      const result = await client.pushImage(image, tags.map((t) => parseReference(t)));
      pushed.push(result);
      for (const t of result.tags) options.onEvent?.({ type: 'output', kind: 'registry', dest: t, digest: result.digest });
    }
  }
  return pushed;
}

interface ImageSources {
  buildContexts: Record<string, string>;
  client: RegistryClient;
  store: BlobStore;
}

/**
 * Resolve an image name from FROM or COPY --from: a named build context (`oci-layout://DIR` or
 * `docker-image://REF`), else a registry reference. Registry images are pulled lazily: a layer is
 * downloaded (into the store) only when something reads it.
 */
async function resolveImage(ref: string, platform: Platform, sources: ImageSources): Promise<Image> {
  const named = sources.buildContexts[ref];
  const target = named ?? ref;
  if (target.startsWith('oci-layout://')) {
    const spec = target.slice('oci-layout://'.length);
    const at = spec.indexOf('@');
    const colon = spec.lastIndexOf(':');
    let dir = spec;
    let refName: string | undefined;
    let digest: string | undefined;
    if (at >= 0) {
      dir = spec.slice(0, at);
      digest = spec.slice(at + 1);
    } else if (colon > spec.lastIndexOf('/')) {
      dir = spec.slice(0, colon);
      refName = spec.slice(colon + 1);
    }
    return readOciLayoutImage(path.resolve(dir), { refName, digest, platform });
  }
  const name = target.startsWith('docker-image://') ? target.slice('docker-image://'.length) : target;
  return sources.client.pullImage(parseReference(name), { platform, store: sources.store, lazy: true });
}
