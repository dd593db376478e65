/**
 * OCI image layout folders (image-spec image-layout.md): `oci-layout`, `index.json`, and
 * `blobs/<alg>/<hex>`. Writing adds to an existing layout (a tag replaces the entry of the same
 * name); index.json is replaced atomically last, so a failed write never leaves a layout whose
 * index names a missing blob. Reading gives Images whose blobs are verified as they are read.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { digestAlgorithm, digestHex, isDigest, sha256 } from '../image/digest.ts';
import type { BlobSource, Image, ImageIndex } from '../image/image.ts';
import { descriptorOf } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType, isIndexMediaType } from '../image/mediatypes.ts';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.ts';
import { verifyingStream } from '../store/blob-store.ts';
import { hostPlatform, selectPlatform } from '../image/platform.ts';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const LAYOUT_VERSION = '1.0.0';

export interface LayoutEntry {
  /** An image, or an index of images (multi-platform). */
  item: Image | ImageIndex;
  /** Tag written as `org.opencontainers.image.ref.name` (e.g. `latest`, or a full reference). */
  refName?: string;
}

/** Write images into the layout at `dir`, creating it when needed. Returns the index.json descriptors added. */
export async function writeOciLayout(dir: string, entries: LayoutEntry[]): Promise<Descriptor[]> {
  await prepareLayoutDir(dir);
  const added: Descriptor[] = [];
  for (const entry of entries) {
    const desc = await writeItem(dir, entry.item);
    if (entry.refName) desc.annotations = { ...(desc.annotations ?? {}), [REF_NAME_ANNOTATION]: entry.refName };
    added.push(desc);
  }
  const existing = await readIndexIfAny(dir);
  const newNames = new Set(added.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean));
  const kept = (existing?.manifests ?? []).filter((d) => {
    const name = d.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined) return !newNames.has(name);
    // An unnamed entry for the same digest is replaced by the new one.
    return !added.some((a) => a.digest === d.digest && a.annotations?.[REF_NAME_ANNOTATION] === undefined);
  });
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [...kept, ...added] };
  await atomicWrite(path.join(dir, 'index.json'), canonicalBytes(index));
  return added;
}

async function prepareLayoutDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  } catch (err) {
    throw fsError(ERROR_CODES.OUTPUT, 'create the output folder', dir, err);
  }
  const layoutFile = path.join(dir, 'oci-layout');
  try {
    const raw = JSON.parse(await fs.readFile(layoutFile, 'utf8')) as { imageLayoutVersion?: string };
    if (typeof raw.imageLayoutVersion !== 'string') throw new Error('no imageLayoutVersion');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new LadingError(ERROR_CODES.OUTPUT, `${layoutFile} exists but is not an OCI layout file`, {
        cause: err,
        hint: 'choose an empty folder or an existing OCI layout as the destination',
      });
    }
    await atomicWrite(layoutFile, canonicalBytes({ imageLayoutVersion: LAYOUT_VERSION }));
  }
}

async function writeItem(dir: string, item: Image | ImageIndex): Promise<Descriptor> {
  if ('index' in item) {
    for (const img of item.images) await writeImageBlobs(dir, img);
    await writeBlobBytes(dir, item.digest, item.indexBytes);
  } else await writeImageBlobs(dir, item);
  return layoutDescriptor(item);
}

/** How index.json lists an image or an index. */
export function layoutDescriptor(item: Image | ImageIndex): Descriptor {
  if ('index' in item) return { mediaType: item.index.mediaType ?? MediaType.OCI_INDEX, digest: item.digest, size: item.indexBytes.length };
  return descriptorOf(item);
}

async function writeImageBlobs(dir: string, img: Image): Promise<void> {
  for (const layer of img.manifest.layers) {
    if (await blobExists(dir, layer.digest, layer.size)) continue;
    const tmp = tempName(blobPath(dir, layer.digest));
    try {
      if (!(await img.blobs.copyTo?.(layer, tmp))) await pipeline(await img.blobs.open(layer), createWriteStream(tmp));
      await fs.rename(tmp, blobPath(dir, layer.digest));
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err instanceof LadingError ? err : fsError(ERROR_CODES.OUTPUT, 'write layer to', dir, err);
    }
  }
  await writeBlobBytes(dir, img.manifest.config.digest, img.configBytes);
  await writeBlobBytes(dir, img.digest, img.manifestBytes);
}

async function writeBlobBytes(dir: string, digest: string, bytes: Buffer): Promise<void> {
  if (await blobExists(dir, digest, bytes.length)) return;
  await atomicWrite(blobPath(dir, digest), bytes);
}

export function blobPath(dir: string, digest: string): string {
  if (!isDigest(digest)) throw new LadingError(ERROR_CODES.IMAGE, `invalid digest "${digest}"`);
  return path.join(dir, 'blobs', digestAlgorithm(digest), digestHex(digest));
}

async function blobExists(dir: string, digest: string, size: number): Promise<boolean> {
  try {
    const st = await fs.stat(blobPath(dir, digest));
    return st.size === size;
  } catch {
    return false;
  }
}

function tempName(file: string): string {
  return `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
}

async function atomicWrite(file: string, bytes: Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw fsError(ERROR_CODES.OUTPUT, 'write', file, err);
  }
}

async function readIndexIfAny(dir: string): Promise<Index | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as Index;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LadingError(ERROR_CODES.OUTPUT, `${path.join(dir, 'index.json')} is not valid JSON`, { cause: err });
  }
}

/** Blobs of a layout folder, verified as they are read. */
export function layoutBlobSource(dir: string): BlobSource {
  return {
    open: async (desc) => {
      const file = blobPath(dir, desc.digest);
      await fs.access(file).catch((err: unknown) => {
        throw fsError(ERROR_CODES.IMAGE, 'read blob', file, err, 'the OCI layout is incomplete');
      });
      return createReadStream(file).pipe(verifyingStream(desc.digest, `blob ${desc.digest} in ${dir}`));
    },
    read: async (desc) => {
      const file = blobPath(dir, desc.digest);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(file);
      } catch (err) {
        throw fsError(ERROR_CODES.IMAGE, 'read blob', file, err, 'the OCI layout is incomplete');
      }
      if (digestAlgorithm(desc.digest) === 'sha256' && sha256(bytes) !== desc.digest) {
        throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `blob ${desc.digest} in ${dir} does not match its digest`);
      }
      return bytes;
    },
  };
}

export interface LayoutSelector {
  /** Match `org.opencontainers.image.ref.name` (a tag, or a full reference ending in it). */
  refName?: string;
  digest?: string;
  /** Choose from an index: `os/arch[/variant]`. */
  platform?: { os: string; architecture: string; variant?: string };
}

/** Read one image from a layout folder. With no selector, the layout must hold exactly one. */
export async function readOciLayoutImage(dir: string, selector: LayoutSelector = {}): Promise<Image> {
  const { blobs, desc } = await findEntry(dir, selector);
  return resolveDescriptor(dir, blobs, desc, selector);
}

/** Read what a layout entry names as it is: an image, or an index with every image it lists. */
export async function readOciLayoutItem(dir: string, selector: Omit<LayoutSelector, 'platform'> = {}): Promise<Image | ImageIndex> {
  const { blobs, desc } = await findEntry(dir, selector);
  const bytes = await blobs.read(desc);
  const doc = JSON.parse(bytes.toString('utf8')) as Manifest | Index;
  if (!(isIndexMediaType(doc.mediaType ?? desc.mediaType) || 'manifests' in doc)) return resolveDescriptor(dir, blobs, desc, {});
  const index = doc as Index;
  // Every manifest the index lists is carried along, attestation manifests (unknown/unknown)
  // included: a registry refuses an index naming a manifest it was not given. Nested indexes are not followed.
  const images = await Promise.all(index.manifests.filter((d) => !isIndexMediaType(d.mediaType)).map((d) => resolveDescriptor(dir, blobs, d, {})));
  return { index, indexBytes: bytes, digest: sha256(bytes), images };
}

async function findEntry(dir: string, selector: Omit<LayoutSelector, 'platform'>): Promise<{ blobs: BlobSource; desc: Descriptor }> {
  const index = await readIndexIfAny(dir);
  if (!index) {
    throw new LadingError(ERROR_CODES.IMAGE, `${dir} is not an OCI image layout (no index.json)`, {
      hint: 'point at a folder written by `lading build --output type=oci`, `skopeo copy ... oci:DIR` or `umoci`',
    });
  }
  const blobs = layoutBlobSource(dir);
  let candidates = index.manifests;
  if (selector.digest) candidates = candidates.filter((d) => d.digest === selector.digest);
  if (selector.refName) {
    const want = selector.refName;
    candidates = candidates.filter((d) => {
      const name = d.annotations?.[REF_NAME_ANNOTATION];
      return name === want || (name !== undefined && (name.endsWith(`:${want}`) || want.endsWith(`:${name}`)));
    });
  }
  if (candidates.length === 0 && selector.digest && !selector.refName) {
    candidates = [{ mediaType: MediaType.OCI_MANIFEST, digest: selector.digest, size: -1 }];
  }
  if (candidates.length !== 1) {
    const names = index.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest).join(', ');
    throw new LadingError(
      ERROR_CODES.IMAGE,
      candidates.length === 0 ? `no image in ${dir} matches ${selector.refName ?? selector.digest ?? ''}` : `${dir} holds several images (${names})`,
      { hint: 'name one with :TAG or @sha256:DIGEST after the folder' },
    );
  }
  return { blobs, desc: candidates[0]! };
}

async function resolveDescriptor(dir: string, blobs: BlobSource, desc: Descriptor, selector: LayoutSelector): Promise<Image> {
  const bytes = await blobs.read(desc);
  const doc = JSON.parse(bytes.toString('utf8')) as Manifest | Index;
  const mediaType = doc.mediaType ?? desc.mediaType;
  if (isIndexMediaType(mediaType) || 'manifests' in doc) {
    const child = selectPlatform((doc as Index).manifests, selector.platform ?? hostPlatform(), `the index in ${dir}`);
    return resolveDescriptor(dir, blobs, child, selector);
  }
  const manifest = doc as Manifest;
  const configBytes = await blobs.read(manifest.config);
  return {
    manifest,
    manifestBytes: bytes,
    digest: sha256(bytes),
    config: JSON.parse(configBytes.toString('utf8')) as ImageConfig,
    configBytes,
    blobs,
  };
}
