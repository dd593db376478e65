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
import { CacheIndex } from '../store/cache-index.ts';

/** Where a build's image goes. */
export type OutputSpec =
  | { type: 'oci'; dest: string }
  | { type: 'docker'; dest: string };

export interface BuildOptions {
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
  /** Named contexts: `name` → `oci-layout://DIR[:TAG|@DIGEST]`, usable in FROM and COPY --from. */
  buildContexts?: Record<string, string>;
  /** Folder of the blob store and cache; default $LADING_CACHE_DIR or $XDG_CACHE_HOME/lading. */
  cacheDir?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  /** Say, for every step that misses the cache, what changed since it last ran. */
  explain?: boolean;
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
  const contextDir = path.resolve(options.context);
  const dockerfilePath = path.resolve(contextDir, options.file ?? 'Dockerfile');
  const shownPath = options.file ?? 'Dockerfile';
  let text: string;
  try {
    text = await fs.readFile(options.file ? path.resolve(options.file) : dockerfilePath, 'utf8');
  } catch (err) {
    throw fsError(ERROR_CODES.DOCKERFILE_PARSE, 'read the Dockerfile', options.file ? path.resolve(options.file) : dockerfilePath, err, 'name it with -f, or put a Dockerfile in the context folder');
  }
  const realDockerfile = options.file ? path.resolve(options.file) : dockerfilePath;
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const epoch = options.sourceDateEpoch ?? sourceDateEpoch();
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const store = await BlobStore.open(cacheDir);
  const statCache = await StatCache.load(path.join(cacheDir, 'statcache', `${sha256(contextDir).slice(7, 23)}.json`));
  const ignore = new IgnoreMatcher(await readDockerignore(contextDir, realDockerfile));
  const context = await BuildContext.open(contextDir, { ignore, statCache });

  const result = await runBuild({
    dockerfile: { text, path: shownPath },
    context,
    store,
    cache: new CacheIndex(cacheDir),
    buildArgs: new Map(Object.entries(options.buildArgs ?? {})),
    target: options.target,
    platform,
    buildPlatform: hostPlatform(),
    resolveImage: (ref, p) => resolveImage(ref, p, options.buildContexts ?? {}),
    layer: { compression: options.compression ?? 'gzip', level: options.compressionLevel ?? 6, epoch },
    format: options.format,
    noCache: options.noCache,
    noCacheFilter: options.noCacheFilter,
    explain: options.explain,
    signal: options.signal,
    onEvent: options.onEvent,
  });
  await statCache.save();

  let image = result.image;
  if (options.labels && Object.keys(options.labels).length > 0) {
    const config = { ...image.config, config: { ...image.config.config, Labels: { ...(image.config.config?.Labels ?? {}), ...options.labels } } };
    image = assembleImage({ config, layers: layersOf(image), format: options.format, blobs: image.blobs });
  }

  const tags = options.tags ?? [];
  for (const output of options.outputs ?? []) {
    if (output.type === 'oci') {
      await writeOciLayout(path.resolve(output.dest), tags.length > 0 ? tags.map((t) => ({ item: image, refName: t })) : [{ item: image }]);
    } else {
      await writeDockerArchive(path.resolve(output.dest), image, { tags });
    }
  }
  const size = image.manifest.config.size + image.manifest.layers.reduce((n, l) => n + l.size, 0);
  return {
    digest: image.digest,
    image,
    size,
    tags,
    platform: platformToString(platform),
    steps: result.steps,
    warnings: result.warnings,
    contentReads: statCache.contentReads,
  };
}

/** Resolve a base image name: a named build context, an `oci-layout://` path, or (later) a registry. */
async function resolveImage(ref: string, platform: Platform, buildContexts: Record<string, string>): Promise<Image> {
  const named = buildContexts[ref];
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
  throw new LadingError(ERROR_CODES.USAGE, `cannot resolve base image "${ref}": pulling from registries is not available in this build`, {
    hint: 'pass it as --build-context NAME=oci-layout://DIR',
  });
}
