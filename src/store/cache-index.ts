/**
 * The cache index: step cache key → the layer that step made (or the fact that it made none).
 * One small JSON file per key under `index/`, written atomically; a hit touches the file so that
 * pruning can drop the least recently used keys first.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isDigest, sha256 } from '../image/digest.ts';
import type { LayerDescriptor } from '../image/types.ts';

export interface CacheRecord {
  key: string;
  /** The layer the step made; null for a step that changes only the config. */
  layer: LayerDescriptor | null;
  /** What went into the key, so that `--explain` can say what changed. */
  inputs?: Record<string, unknown>;
  /**
   * `step`: a build step's cache key; `content`: a layer named by what it holds (reuse across
   * keys); `parent`: a key steps were built on (see `parentMarker`), holding no layer.
   */
  kind?: 'step' | 'content' | 'parent';
}

/**
 * The key of the record saying that some step was built on `parentKey`. Without it, no step
 * keyed on that parent can be in the cache, which lets a build skip computing keys first.
 */
export function parentMarker(parentKey: string): string {
  return sha256(`lading-parent-v1\n${parentKey}`);
}

const FORMAT = 1;

export class CacheIndex {
  private readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'index');
  }

  private file(key: string): string {
    if (!isDigest(key)) throw new Error(`cache keys are digests, not ${key}`);
    const hex = key.slice(key.indexOf(':') + 1);
    return path.join(this.dir, hex.slice(0, 2), `${hex}.json`);
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    const file = this.file(key);
    let raw: string;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const record = JSON.parse(raw) as CacheRecord & { format?: number };
      if (record.format !== FORMAT || record.key !== key) return undefined;
      const now = new Date();
      await fs.utimes(file, now, now).catch(() => undefined);
      return { key: record.key, layer: record.layer, ...(record.inputs ? { inputs: record.inputs } : {}), ...(record.kind ? { kind: record.kind } : {}) };
    } catch {
      // A damaged record is a miss; the next put replaces it.
      return undefined;
    }
  }

  async put(record: CacheRecord): Promise<void> {
    const file = this.file(record.key);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.writeFile(tmp, JSON.stringify({ format: FORMAT, ...record }));
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /** Whether no record at all is stored (a first build into this store). */
  async isEmpty(): Promise<boolean> {
    let shards: string[];
    try {
      shards = await fs.readdir(this.dir);
    } catch {
      return true;
    }
    for (const shard of shards) {
      const names = await fs.readdir(path.join(this.dir, shard)).catch(() => [] as string[]);
      if (names.some((n) => n.endsWith('.json'))) return false;
    }
    return true;
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }

  /** Every record with the time it was last used. */
  async *entries(): AsyncGenerator<{ record: CacheRecord; lastUsed: Date; bytes: number }> {
    let shards: string[];
    try {
      shards = await fs.readdir(this.dir);
    } catch {
      return;
    }
    for (const shard of shards.sort()) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.dir, shard));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        if (!name.endsWith('.json')) continue;
        const file = path.join(this.dir, shard, name);
        try {
          const [raw, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
          const record = JSON.parse(raw) as CacheRecord;
          yield { record, lastUsed: st.mtime, bytes: st.size };
        } catch {
          continue;
        }
      }
    }
  }
}
