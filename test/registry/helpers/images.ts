/**
 * Small test images built the way lading builds them (write-layer + mutate), in a private store:
 * layers of seeded pseudo-random bytes (incompressible, so sizes are predictable) with an
 * optional text file.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Image, ImageIndex } from '../../../src/image/image.ts';
import { canonicalBytes } from '../../../src/image/json.ts';
import { sha256 } from '../../../src/image/digest.ts';
import { assembleImage } from '../../../src/image/mutate.ts';
import { MediaType } from '../../../src/image/mediatypes.ts';
import type { ImageConfig, Index } from '../../../src/image/types.ts';
import type { LayerEntry } from '../../../src/layer/entry.ts';
import { writeLayer } from '../../../src/layer/write-layer.ts';
import { BlobStore, storeBlobSource } from '../../../src/store/blob-store.ts';

/** Deterministic pseudo-random bytes (sha256 in counter mode). */
export function noise(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let offset = 0;
  for (let i = 0; offset < size; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

export interface TestStore {
  dir: string;
  store: BlobStore;
  remove(): Promise<void>;
}

export async function tempStore(): Promise<TestStore> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-regtest-'));
  const store = await BlobStore.open(dir);
  return { dir, store, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** An image with one layer per size, each a file of `noise(seed+i)`; gzip level 1. */
export async function makeImage(store: BlobStore, seed: string, sizes: number[], platform: { os: string; architecture: string; variant?: string } = { os: 'linux', architecture: 'amd64' }): Promise<Image> {
  const layers = [];
  for (const [i, size] of sizes.entries()) {
    const data = noise(`${seed}-${i}`, size);
    const entries: LayerEntry[] = [{ path: `data/${seed}-${i}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, source: { kind: 'bytes', data } }];
    layers.push(await writeLayer(entries, store, { level: 1, concurrency: 1 }));
  }
  const config: ImageConfig = { ...platform, config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [] } };
  return assembleImage({ config, layers, blobs: storeBlobSource(store) });
}

/** An OCI index over images (their platforms from their configs). */
export function makeIndex(images: Image[]): ImageIndex {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: images.map((img) => ({
      mediaType: MediaType.OCI_MANIFEST,
      digest: img.digest,
      size: img.manifestBytes.length,
      platform: { os: img.config.os, architecture: img.config.architecture, ...(img.config.variant ? { variant: img.config.variant } : {}) },
    })),
  };
  const indexBytes = canonicalBytes(index);
  return { index, indexBytes, digest: sha256(indexBytes), images };
}
