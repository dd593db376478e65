/**
 * File-system indexes of layers, computed once per layer (diffID) and kept in the store, so
 * that knowing what a base image holds costs one pass over its tar headers, ever.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BlobSource } from '../image/image.ts';
import type { LayerDescriptor } from '../image/types.ts';
import type { LayerEntry } from '../layer/entry.ts';
import { FsIndex, KEPT_FILES, classifyEntry, emptyIndexedLayer, type IndexedLayer } from '../layer/fs-index.ts';
import { listLayer } from '../layer/listing.ts';
import type { BlobStore } from '../store/blob-store.ts';

const FORMAT = 1;

export class FsIndexer {
  private readonly memory = new Map<string, Promise<IndexedLayer>>();
  private readonly dir: string;

  constructor(store: BlobStore) {
    this.dir = path.join(store.root, 'fsindex');
  }

  /** Remember the index of a layer we just wrote (we know its entries, no need to read it). */
  remember(diffID: string, layer: IndexedLayer): void {
    this.memory.set(diffID, Promise.resolve(layer));
    void this.save(diffID, layer);
  }

  index(layer: LayerDescriptor, blobs: BlobSource): Promise<IndexedLayer> {
    let p = this.memory.get(layer.diffID);
    if (!p) {
      p = this.load(layer, blobs);
      this.memory.set(layer.diffID, p);
      p.catch(() => this.memory.delete(layer.diffID));
    }
    return p;
  }

  async indexAll(layers: LayerDescriptor[], blobs: BlobSource): Promise<FsIndex> {
    const indexed = await Promise.all(layers.map((l) => this.index(l, blobs)));
    const idx = new FsIndex();
    for (const l of indexed) idx.apply(l);
    return idx;
  }

  private file(diffID: string): string {
    return path.join(this.dir, `${diffID.replace(':', '-')}.json`);
  }

  private async load(layer: LayerDescriptor, blobs: BlobSource): Promise<IndexedLayer> {
    try {
      const raw = JSON.parse(await fs.readFile(this.file(layer.diffID), 'utf8')) as { format: number; layer: IndexedLayer };
      if (raw.format === FORMAT) return raw.layer;
    } catch {
      // Not indexed yet.
    }
    const indexed = await listLayer(await blobs.open(layer));
    await this.save(layer.diffID, indexed);
    return indexed;
  }

  private async save(diffID: string, layer: IndexedLayer): Promise<void> {
    const file = this.file(diffID);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await fs.writeFile(tmp, JSON.stringify({ format: FORMAT, layer }));
      await fs.rename(tmp, file);
    } catch {
      // The index is an optimisation; it is rebuilt from the layer when missing.
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

/** The index of a layer from the entries we are about to write. */
export async function indexedLayerOf(entries: LayerEntry[], epoch: number): Promise<IndexedLayer> {
  const layer = emptyIndexedLayer();
  for (const e of entries) {
    classifyEntry(layer, e.path, {
      type: e.type,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.size ?? 0,
      mtime: Math.min(e.mtime ?? epoch, epoch),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    });
    if (e.type === 'file' && KEPT_FILES.has(e.path) && e.source) {
      const s = e.source;
      if (s.kind === 'bytes') layer.files[e.path] = Buffer.from(s.data).toString('utf8');
      else if (s.kind === 'path') layer.files[e.path] = await fs.readFile(s.path, 'utf8');
    }
  }
  return layer;
}
