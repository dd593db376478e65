/**
 * The registry as a shared layer cache (`--cache-to`, `--cache-from`, `--cache-repo`).
 *
 * Each cached step is one small OCI artifact manifest in the cache repository, tagged by the
 * step's key (`<prefix>-<64 hex>`): its one layer is the step's layer (or the empty descriptor
 * for a step that made none) and its annotations carry the key and the layer's diffID. Keys are
 * content addresses, so an entry never changes once written: it works with immutable tags, two
 * CI runners writing at once never conflict, and a lookup is one manifest GET for the steps that
 * miss locally. The layers are ordinary blobs of the repository, so a push to the same registry
 * mounts them instead of moving bytes. (kaniko's --cache-repo keeps one image per key the same way.)
 */
import { Readable } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { CacheExportEntry, RemoteCache, RemoteHit } from '../engine/remote-cache.ts';
import { sha256 } from '../image/digest.ts';
import type { BlobSource, Image } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import type { Descriptor, ImageConfig, Manifest } from '../image/types.ts';
import { parseReference } from '../registry/reference.ts';
import type { ImageReference, RegistryClient } from '../registry/index.ts';
import type { BlobStore } from '../store/blob-store.ts';

export const CACHE_ARTIFACT_TYPE = 'application/vnd.lading.cache.step.v1';
export const KEY_ANNOTATION = 'dev.lading.cache.key';
export const DIFFID_ANNOTATION = 'dev.lading.cache.diffid';
const DEFAULT_PREFIX = 'lading-cache';
const EMPTY_JSON = Buffer.from('{}');
const EMPTY_DESCRIPTOR: Descriptor = { mediaType: MediaType.OCI_EMPTY, digest: sha256(EMPTY_JSON), size: EMPTY_JSON.length };

export interface CacheLocation {
  /** The repository that holds the entries. */
  repository: ImageReference;
  /** Tags are `<prefix>-<key hex>`. */
  prefix: string;
  /** `min`: the steps of the image's own stages; `max`: every stage built. */
  mode: 'min' | 'max';
}

/**
 * `type=registry,ref=REPO[:PREFIX][,mode=min|max]` (buildx's form), or a bare `REPO[:PREFIX]`
 * (kaniko's --cache-repo).
 */
export function parseCacheSpec(spec: string, what: string): CacheLocation {
  const fields: Record<string, string> = {};
  if (spec.includes('=')) {
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw new LadingError(ERROR_CODES.USAGE, `invalid ${what} "${spec}"`, { hint: `write ${what} type=registry,ref=REGISTRY/REPOSITORY[:TAG]` });
      fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
  } else fields.ref = spec;
  const type = fields.type ?? 'registry';
  if (type !== 'registry') {
    throw new LadingError(ERROR_CODES.USAGE, `unsupported ${what} type "${type}"`, { hint: 'lading keeps its shared cache in a registry: use type=registry,ref=...' });
  }
  if (!fields.ref) throw new LadingError(ERROR_CODES.USAGE, `${what} needs ref=REGISTRY/REPOSITORY[:TAG]`);
  const parsed = parseReference(fields.ref);
  if (parsed.digest) throw new LadingError(ERROR_CODES.USAGE, `${what} ref cannot name a digest: ${fields.ref}`);
  const explicitTag = /:[^/]+$/.test(fields.ref) ? parsed.tag : undefined;
  const prefix = explicitTag ?? DEFAULT_PREFIX;
  if (prefix.length > 60) throw new LadingError(ERROR_CODES.USAGE, `${what} tag "${prefix}" is too long to prefix cache tags (60 characters at most)`);
  const mode = fields.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new LadingError(ERROR_CODES.USAGE, `${what} mode must be min or max, not "${mode}"`);
  return { repository: parseReference(`${parsed.registry}/${parsed.repository}`, { defaultTag: false }), prefix, mode };
}

function tagFor(location: CacheLocation, key: string): ImageReference {
  return parseReference(`${location.repository.registry}/${location.repository.repository}:${location.prefix}-${key.slice(key.indexOf(':') + 1)}`);
}

function isNotFound(err: unknown): boolean {
  return err instanceof LadingError && (err.details.status === 404 || err.details.registryCode === 'MANIFEST_UNKNOWN' || err.details.registryCode === 'NAME_UNKNOWN');
}

export class RegistryCache implements RemoteCache {
  constructor(
    private readonly client: RegistryClient,
    private readonly store: BlobStore,
    private readonly from: CacheLocation[],
  ) {}

  /** The first source that has `key`, in the order given. */
  async lookup(key: string): Promise<RemoteHit | undefined> {
    for (const location of this.from) {
      let image: Image;
      try {
        image = await this.client.pullImage(tagFor(location, key), { store: this.store, lazy: true });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      const hit = readEntry(image, key);
      if (hit) return hit;
    }
    return undefined;
  }
}

/** A cache entry's layer, if the manifest is one of ours for this key. */
function readEntry(image: Image, key: string): RemoteHit | undefined {
  const m = image.manifest;
  if (m.annotations?.[KEY_ANNOTATION] !== key || m.layers.length !== 1) return undefined;
  const layer = m.layers[0]!;
  if (layer.mediaType === MediaType.OCI_EMPTY) return { layer: null, blobs: image.blobs };
  const diffID = m.annotations?.[DIFFID_ANNOTATION];
  if (!diffID) return undefined;
  return { layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID }, blobs: image.blobs };
}

/** The artifact that records one step, as an Image the registry client can push. */
function entryArtifact(entry: CacheExportEntry, blobs: BlobSource): Image {
  const layer: Descriptor = entry.layer ? { mediaType: entry.layer.mediaType, digest: entry.layer.digest, size: entry.layer.size } : EMPTY_DESCRIPTOR;
  const annotations: Record<string, string> = { [KEY_ANNOTATION]: entry.key };
  if (entry.layer) annotations[DIFFID_ANNOTATION] = entry.layer.diffID;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    annotations,
  };
  const manifestBytes = canonicalBytes(manifest);
  const source: BlobSource = {
    open: async (desc) => (desc.digest === EMPTY_DESCRIPTOR.digest ? Readable.from([EMPTY_JSON]) : blobs.open(desc)),
    read: async (desc) => (desc.digest === EMPTY_DESCRIPTOR.digest ? EMPTY_JSON : blobs.read(desc)),
  };
  if (blobs.origins) source.origins = (digest) => blobs.origins!(digest);
  return { manifest, manifestBytes, digest: sha256(manifestBytes), config: {} as ImageConfig, configBytes: EMPTY_JSON, blobs: source };
}

export interface CacheExportResult {
  written: number;
  existing: number;
}

/** Write every entry not yet in the cache repository. */
export async function exportCache(client: RegistryClient, location: CacheLocation, entries: CacheExportEntry[], blobs: BlobSource): Promise<CacheExportResult> {
  const result: CacheExportResult = { written: 0, existing: 0 };
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.key)) continue;
    seen.add(entry.key);
    const tag = tagFor(location, entry.key);
    if (await client.head(tag)) {
      result.existing++;
      continue;
    }
    await client.pushImage(entryArtifact(entry, blobs), [tag]);
    result.written++;
  }
  return result;
}
