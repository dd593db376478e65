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
import { compressionPool } from '../layer/compression-pool.ts';
import type { BuildEvent, StepRef } from '../engine/events.ts';
import { runBuild, type StepReport } from '../engine/build.ts';
import type { BlobSource, Image, ImageIndex } from '../image/image.ts';
import { assembleImage, assembleIndex, layersOf } from '../image/mutate.ts';
import type { Compression, ImageFormat } from '../image/mediatypes.ts';
import { hostPlatform, parsePlatform, platformToString } from '../image/platform.ts';
import type { LayerDescriptor, Platform } from '../image/types.ts';
import { writeDockerArchive } from '../output/docker-archive.ts';
import { readOciLayoutImage, writeOciLayout } from '../output/oci-layout.ts';
import { writeOciArchive } from '../output/oci-archive.ts';
import { materializeRootfs } from '../run/index.ts';
import { gitSource } from '../attest/git.ts';
import { BlobStore } from '../store/blob-store.ts';
import { parseReference } from '../registry/reference.ts';
import type { PushResult, RegistryClient } from '../registry/index.ts';
import { registryClient, type RegistryOptions } from './registry.ts';
import { cancellable } from './cancel.ts';
import { rootfsExecutor } from './run-executor.ts';
import { RegistryCache, exportCache, parseCacheSpec } from './remote-cache.ts';
import { withAttestations } from './attestations.ts';
import { CacheIndex } from '../store/cache-index.ts';

/** Where a build's image goes. */
export type OutputSpec =
  /** An OCI image layout folder, or with `tar` (or a dest ending in .tar) an OCI archive. */
  | { type: 'oci'; dest: string; tar?: boolean }
  /** A `docker load` tarball (one platform). */
  | { type: 'docker'; dest: string }
  /** Push to every tag (`--push`). */
  | { type: 'registry' }
  /** The final root file system as plain files (one platform). */
  | { type: 'local'; dest: string };

export interface BuildOptions extends RegistryOptions {
  /** The build context folder. */
  context: string;
  /** The Dockerfile (default `Dockerfile` in the context). */
  file?: string;
  /** Image names (`name:tag`), used by outputs that record names. */
  tags?: string[];
  /** `ARG` values by name (`--build-arg`); they override the Dockerfile's defaults. */
  buildArgs?: Record<string, string>;
  /** Build this stage (by name) instead of the last one. */
  target?: string;
  /**
   * `os/arch[/variant]`, or several separated by commas (or an array): one image per platform,
   * joined in an index. Defaults to this machine's platform.
   */
  platform?: string | string[];
  /** Where the image goes (`--output`); none means the image stays in the store only. */
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
  /** Run every step, ignoring the local and shared caches (`--no-cache`). */
  noCache?: boolean;
  /** Stages (by name or index) whose steps always run (`--no-cache-filter`). */
  noCacheFilter?: string[];
  /** Say, for every step that misses the cache, what changed since it last ran. */
  explain?: boolean;
  /** Shared caches to read, in order: `type=registry,ref=REPO[:TAG]` or `REPO[:TAG]`. */
  cacheFrom?: string[];
  /** Shared caches to write: `type=registry,ref=REPO[:TAG][,mode=min|max]`. */
  cacheTo?: string[];
  /** kaniko's short form: read and write the shared cache in REPO. */
  cacheRepo?: string;
  /** Layer compression: `gzip` (default), `zstd` or `none`. */
  compression?: Compression;
  /** gzip 1-9 (default 6), zstd 1-19 (default 3). */
  compressionLevel?: number;
  /** Media types of manifests and layers: `oci` (default) or `docker`. */
  format?: ImageFormat;
  /** Clamp every timestamp to this (seconds); default SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number;
  /** Labels added to the final image's config. */
  labels?: Record<string, string>;
  /**
   * Secrets for `RUN --mount=type=secret,id=ID`: `{ src: FILE }` or `{ env: VARIABLE }`. Their
   * values never reach a layer, the history, a cache key or a log.
   */
  secrets?: Record<string, { src?: string; env?: string }>;
  /** Run RUN steps with this sandbox instead of the one chosen automatically. */
  sandbox?: 'bwrap' | 'proot' | 'chroot';
  /**
   * The network of RUN steps without `--network`: `default` (the host's, as buildx's default),
   * `none` (only loopback), or `host`. Like the step's own flag, it is part of each RUN's key.
   */
  network?: 'default' | 'none' | 'host';
  /**
   * Annotations: `key=value` on each image manifest, `index:key=value` on the index,
   * `manifest:key=value` explicitly on manifests (buildx's --annotation syntax).
   */
  annotations?: string[];
  /** Fill org.opencontainers.image.source, .revision and .created from the context's git checkout. */
  annotateVcs?: boolean;
  /**
   * Attach an SBOM (SPDX 2.3 JSON in an in-toto statement) of each platform's image, from a scan
   * of its layers. Default: on when pushing, off otherwise.
   */
  sbom?: boolean;
  /**
   * Attach SLSA provenance v1: `min` records the Dockerfile, platforms, target, base image and
   * context digests and the git source; `max` adds build arguments (which may hold secrets) and
   * labels. Default: `min` when pushing, none otherwise.
   */
  provenance?: 'min' | 'max' | false;
  /**
   * How attestations are attached: `index` (default; attestation manifests in the image index, as
   * BuildKit does, so a single-platform image becomes an index) or `referrers` (OCI 1.1 artifacts
   * whose subject is the image, through the referrers API or its fallback tag).
   */
  attestAs?: 'index' | 'referrers';
  /** Cancels the build: it rejects with `INTERRUPTED`, its temporary files removed and nothing half-pushed tagged. */
  signal?: AbortSignal;
  /** Progress as typed events (steps, layer bytes, registry transfers, retries); never called with a secret. */
  onEvent?: (event: BuildEvent) => void;
}

export interface PlatformImage {
  /** `os/arch[/variant]`. */
  platform: string;
  /** The digest of this platform's image manifest. */
  digest: string;
  /** The image: manifest, config and a reader for its blobs. */
  image: Image;
}

export interface BuildResult {
  /** What the tags name: the image manifest, or the index of a multi-platform build. */
  digest: string;
  /** The image (the first platform's, for a multi-platform build). */
  image: Image;
  /** The index of a multi-platform build. */
  index?: ImageIndex;
  /** Every platform's image. */
  images: PlatformImage[];
  /** Compressed bytes of configs and layers (shared layers counted once). */
  size: number;
  /** The names given (`tags`), as written. */
  tags: string[];
  /** The platforms built, comma-separated. */
  platform: string;
  /** Every file-system step, in build order: cached or run, its layer and time. */
  steps: StepReport[];
  /** Dockerfile warnings, as `file:line: message`. */
  warnings: string[];
  /** Context files whose content had to be read (0 when the stat cache knew them all). */
  contentReads: number;
  /**
   * Of those, files read only to hash them. A cold build that copies files into an empty cache
   * hashes them as it writes the layer instead, so each is read once and this stays 0.
   */
  hashOnlyReads: number;
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

/**
 * Build an image from a Dockerfile and write it to every output (an OCI folder, a tarball, a
 * registry). Rejects with a `LadingError`; with `INTERRUPTED` once `options.signal` aborts, after
 * removing the build's temporary files (an aborted push tags nothing it had not finished).
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  return cancellable(options.signal, 'build', () => buildImage(options));
}

async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const outputs = [...(options.outputs ?? [])];
  if (options.push && !outputs.some((o) => o.type === 'registry')) outputs.push({ type: 'registry' });
  const tags = options.tags ?? [];
  if (outputs.some((o) => o.type === 'registry') && tags.length === 0) {
    throw new LadingError(ERROR_CODES.USAGE, 'pushing needs at least one tag', { hint: 'name the image with -t REGISTRY/REPOSITORY:TAG' });
  }
  const annotations = parseAnnotations(options.annotations ?? []);
  const inputs = await readInputs(options);
  if (inputs.platforms.length > 1) {
    const single = outputs.find((o) => o.type === 'docker' || o.type === 'local');
    if (single) {
      throw new LadingError(ERROR_CODES.USAGE, `--output type=${single.type} holds one platform, and this build has ${inputs.platforms.length}`, {
        hint: 'choose one --platform for it, or write an OCI folder or push to a registry, which keep every platform',
      });
    }
  }
  const epoch = options.sourceDateEpoch ?? sourceDateEpoch();
  if (options.annotateVcs) Object.assign(annotations.manifest, await vcsAnnotations(inputs.context.root, epoch));
  const client = registryClient(options, options.onEvent, options.signal);
  const cacheFrom = [...(options.cacheFrom ?? []), ...(options.cacheRepo ? [options.cacheRepo] : [])].map((c) => parseCacheSpec(c, '--cache-from'));
  const cacheTo = [...(options.cacheTo ?? []), ...(options.cacheRepo ? [options.cacheRepo] : [])].map((c) => parseCacheSpec(c, '--cache-to'));
  const remoteCache = cacheFrom.length > 0 ? new RegistryCache(client, inputs.store, cacheFrom) : undefined;
  const layerWrites = new Map<string, Promise<LayerDescriptor>>();
  const secrets = await secretFiles(options.secrets ?? {}, inputs.store);
  const runner = rootfsExecutor(() => inputs.store.makeTempDir('run'), options.sandbox);
  try {
    // One build per platform, all at once: they share the store, the stat cache and every layer
    // whose content does not depend on the platform.
    const results = await Promise.all(
      inputs.platforms.map((platform) =>
        runBuild({
          dockerfile: inputs.dockerfile,
          context: inputs.context,
          store: inputs.store,
          cache: new CacheIndex(inputs.cacheDir),
          buildArgs: new Map(Object.entries(options.buildArgs ?? {})),
          target: options.target,
          platform,
          buildPlatform: hostPlatform(),
          resolveImage: (ref, p) => resolveImage(ref, p, { buildContexts: options.buildContexts ?? {}, client, store: inputs.store }),
          layer: { compression: options.compression ?? 'gzip', level: options.compressionLevel ?? defaultLevel(options.compression), epoch },
          format: options.format,
          noCache: options.noCache,
          noCacheFilter: options.noCacheFilter,
          explain: options.explain,
          ...(options.network ? { network: options.network } : {}),
          remoteCache,
          // Keys first where they are worth it: a shared cache to ask, or platforms sharing layers.
          singlePass: inputs.platforms.length === 1 && remoteCache === undefined,
          layerWrites,
          runner,
          secrets: secrets.files,
          signal: options.signal,
          onEvent: inputs.platforms.length > 1 && options.onEvent ? (e) => options.onEvent!(withPlatform(e, platform)) : options.onEvent,
        }),
      ),
    );
    // Saved while the outputs are written (it never fails a build: a lost cache costs a re-hash).
    const statCacheSaved = inputs.statCache.save().catch(() => undefined);

    const images: PlatformImage[] = results.map((r, i) => {
      const image = finalizeImage(r.image, r.bases, options, annotations.manifest);
      return { platform: platformToString(inputs.platforms[i]!), digest: image.digest, image };
    });
    const index = images.length > 1 ? assembleIndex({ images: images.map((i) => i.image), format: options.format, annotations: annotations.index }) : undefined;
    const item: Image | ImageIndex = index ?? images[0]!.image;

    const cacheExported: BuildResult['cacheExported'] = [];
    for (const location of cacheTo) {
      const entries = results.flatMap((r) => r.cacheEntries.filter((e) => location.mode === 'max' || e.inFinalImage));
      const r = await exportCache(client, location, entries, layeredBlobs(results.map((x) => x.blobs)));
      cacheExported.push({ ref: `${location.repository.registry}/${location.repository.repository}:${location.prefix}-*`, ...r });
    }
    // SBOM and provenance join the index, or follow the outputs as referrers, when asked for.
    const { item: attested, pushed } = await withAttestations(
      item,
      { options, outputs, tags, epoch, images, bases: results.map((r) => r.bases), context: inputs.context, dockerfile: inputs.dockerfile, indexAnnotations: annotations.index, client, onWarning: (message) => options.onEvent?.({ type: 'warning', message }) },
      (it) => writeOutputs(it, outputs, tags, client, options),
    );
    await statCacheSaved;
    const layerSizes = new Map<string, number>();
    for (const { image } of images) {
      layerSizes.set(image.manifest.config.digest, image.manifest.config.size);
      for (const l of image.manifest.layers) layerSizes.set(l.digest, l.size);
    }
    return {
      digest: attested.digest,
      image: images[0]!.image,
      ...('index' in attested ? { index: attested } : {}),
      images,
      size: [...layerSizes.values()].reduce((n, x) => n + x, 0),
      tags,
      platform: images.map((i) => i.platform).join(','),
      steps: results.flatMap((r, i) => r.steps.map((s) => (results.length > 1 ? { ...s, platform: images[i]!.platform } : s))),
      warnings: [...new Set(results.flatMap((r) => r.warnings))],
      contentReads: inputs.statCache.contentReads,
      hashOnlyReads: inputs.statCache.hashOnlyReads,
      pushed,
      cacheExported,
    };
  } finally {
    client.close();
    await secrets.dispose();
  }
}

/**
 * Secret id → a file holding it. Secrets from the environment are written to a private file
 * (mode 0600) in the store's temporary folder and removed when the build ends.
 */
async function secretFiles(secrets: Record<string, { src?: string; env?: string }>, store: BlobStore): Promise<{ files: Map<string, string>; dispose(): Promise<void> }> {
  const files = new Map<string, string>();
  let dir: string | undefined;
  for (const [id, spec] of Object.entries(secrets)) {
    if (spec.src !== undefined) {
      const file = path.resolve(spec.src);
      try {
        await fs.access(file);
      } catch (err) {
        throw fsError(ERROR_CODES.USAGE, `read secret "${id}" from`, file, err, 'point --secret src= at a readable file');
      }
      files.set(id, file);
      continue;
    }
    const variable = spec.env ?? id;
    const value = process.env[variable];
    if (value === undefined) {
      throw new LadingError(ERROR_CODES.USAGE, `secret "${id}" should come from the environment variable ${variable}, which is not set`, {
        hint: `set ${variable}, or pass --secret id=${id},src=FILE`,
      });
    }
    dir ??= await store.makeTempDir('secrets');
    const file = path.join(dir, id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    await fs.writeFile(file, value, { mode: 0o600 });
    files.set(id, file);
  }
  return { files, dispose: async () => (dir ? fs.rm(dir, { recursive: true, force: true }) : undefined) };
}

function defaultLevel(compression: Compression | undefined): number {
  return compression === 'zstd' ? 3 : 6;
}

/** Events of one platform's build in a multi-platform build name the platform in their step. */
function withPlatform(e: BuildEvent, platform: Platform): BuildEvent {
  if (!('ref' in e)) return e;
  const stepEvent = e as Extract<BuildEvent, { ref: StepRef }>;
  return { ...stepEvent, ref: { ...stepEvent.ref, platform: platformToString(platform) } };
}

function layeredBlobs(sources: BlobSource[]): BlobSource {
  const first = async <T>(fn: (s: BlobSource) => Promise<T>): Promise<T> => {
    let last: unknown;
    for (const s of sources) {
      try {
        return await fn(s);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
  return { open: (d) => first((s) => s.open(d)), read: (d) => first((s) => s.read(d)), origins: (digest) => sources.flatMap((s) => s.origins?.(digest) ?? []) };
}

interface Annotations {
  manifest: Record<string, string>;
  index: Record<string, string>;
}

/** buildx's `--annotation [TYPE:]KEY=VALUE` (TYPE: manifest, index, or both as `manifest,index`). */
export function parseAnnotations(specs: string[]): Annotations {
  const out: Annotations = { manifest: {}, index: {} };
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new LadingError(ERROR_CODES.USAGE, `invalid annotation "${spec}"`, { hint: 'write [manifest:|index:]KEY=VALUE' });
    let key = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    let types = ['manifest'];
    const colon = key.indexOf(':');
    if (colon > 0 && /^(manifest|index)(,(manifest|index))*$/.test(key.slice(0, colon))) {
      types = key.slice(0, colon).split(',');
      key = key.slice(colon + 1);
    }
    for (const t of types) out[t as 'manifest' | 'index'][key] = value;
  }
  return out;
}

/** org.opencontainers.image.* from the git checkout the context is in (never a credential). */
async function vcsAnnotations(contextDir: string, epoch: number): Promise<Record<string, string>> {
  const git = await gitSource(contextDir);
  const out: Record<string, string> = { 'org.opencontainers.image.created': new Date(epoch * 1000).toISOString() };
  if (git?.uri) out['org.opencontainers.image.source'] = git.uri;
  if (git?.revision) out['org.opencontainers.image.revision'] = git.revision;
  return out;
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
  const statCache = await StatCache.load(path.join(cacheDir, 'statcache', `${sha256(contextDir).slice(7, 23)}.json`), 16, (file) => compressionPool().hashFile(file));
  const ignore = new IgnoreMatcher(await readDockerignore(contextDir, dockerfilePath));
  const context = await BuildContext.open(contextDir, { ignore, statCache });
  const platforms = parsePlatforms(options.platform);
  return { dockerfile: { text, path: options.file ?? 'Dockerfile' }, context, store, statCache, cacheDir, platforms };
}

function parsePlatforms(spec: string | string[] | undefined): Platform[] {
  const list = (Array.isArray(spec) ? spec : spec === undefined ? [] : [spec]).flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean);
  if (list.length === 0) return [hostPlatform()];
  const seen = new Set<string>();
  const out: Platform[] = [];
  for (const p of list.map(parsePlatform)) {
    const key = platformToString(p);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/**
 * `--label`s land in the config; annotations (and, for an image base, the base's name and
 * digest) on the manifest. The one place after the build an image changes.
 */
function finalizeImage(image: Image, bases: { ref: string; digest: string }[], options: BuildOptions, manifestAnnotations: Record<string, string>): Image {
  const labels = options.labels ?? {};
  const annotations: Record<string, string> = {};
  const base = bases.at(-1);
  if (base) {
    annotations['org.opencontainers.image.base.name'] = base.ref;
    annotations['org.opencontainers.image.base.digest'] = base.digest;
  }
  Object.assign(annotations, manifestAnnotations);
  if (Object.keys(labels).length === 0 && Object.keys(annotations).length === 0) return image;
  const config = Object.keys(labels).length === 0 ? image.config : { ...image.config, config: { ...image.config.config, Labels: { ...(image.config.config?.Labels ?? {}), ...labels } } };
  return assembleImage({ config, layers: layersOf(image), format: options.format, blobs: image.blobs, annotations: { ...(image.manifest.annotations ?? {}), ...annotations } });
}

async function writeOutputs(item: Image | ImageIndex, outputs: OutputSpec[], tags: string[], client: RegistryClient, options: BuildOptions): Promise<PushResult[]> {
  const pushed: PushResult[] = [];
  const single = (): Image => ('index' in item ? item.images[0]! : item);
  for (const output of outputs) {
    if (output.type === 'oci') {
      const dest = path.resolve(output.dest);
      const entries = tags.length > 0 ? tags.map((t) => ({ item, refName: t })) : [{ item }];
      if (output.tar ?? dest.endsWith('.tar')) await writeOciArchive(dest, entries);
      else await writeOciLayout(dest, entries);
      options.onEvent?.({ type: 'output', kind: 'oci', dest, digest: item.digest });
    } else if (output.type === 'docker') {
      const dest = path.resolve(output.dest);
      await writeDockerArchive(dest, single(), { tags });
      options.onEvent?.({ type: 'output', kind: 'docker', dest, digest: item.digest });
    } else if (output.type === 'local') {
      const dest = path.resolve(output.dest);
      const image = single();
      await materializeRootfs(dest, image.manifest.layers, image.blobs, options.signal);
      options.onEvent?.({ type: 'output', kind: 'local', dest, digest: item.digest });
    } else {
      const result = await client.pushImage(item, tags.map((t) => parseReference(t)));
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
