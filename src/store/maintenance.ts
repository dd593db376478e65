/**
 * Looking after the store: verify every blob and cache record, list what the cache holds, and
 * prune it by age or size. Safe while builds run: nothing used within the grace period is
 * removed (a build touches the records and blobs it uses), and temporary files of live writers
 * are left alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BlobStore } from './blob-store.ts';
import { CacheIndex, type CacheRecord } from './cache-index.ts';

export interface VerifyReport {
  /** Blobs checked. */
  blobs: number;
  /** Digests of blobs whose bytes do not match their name. */
  corrupt: string[];
  /** Cache records whose layer blob is missing or corrupt. */
  danglingRecords: string[];
  /** Files in the store that are not where they belong (a wrong name, a leftover). */
  strays: string[];
  /** True when `repair` removed what was found. */
  repaired: boolean;
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

export async function verifyStore(root: string, options: { repair?: boolean } = {}): Promise<VerifyReport> {
  const store = await BlobStore.open(root);
  const index = new CacheIndex(root);
  const report: VerifyReport = { blobs: 0, corrupt: [], danglingRecords: [], strays: [], repaired: false };
  const good = new Set<string>();
  for await (const digest of store.list()) {
    report.blobs++;
    const actual = await hashFile(store.path(digest)).catch(() => 'unreadable');
    if (actual === digest) good.add(digest);
    else report.corrupt.push(digest);
  }
  for (const algo of await fs.readdir(path.join(root, 'blobs')).catch(() => [] as string[])) {
    for (const name of await fs.readdir(path.join(root, 'blobs', algo)).catch(() => [] as string[])) {
      if (!/^[a-f0-9]{64}$|^[a-f0-9]{128}$/.test(name)) report.strays.push(path.join('blobs', algo, name));
    }
  }
  for await (const { record } of index.entries()) {
    if (record.layer && !good.has(record.layer.digest)) report.danglingRecords.push(record.key);
  }
  if (options.repair) {
    for (const d of report.corrupt) await store.remove(d);
    for (const k of report.danglingRecords) await index.delete(k);
    for (const s of report.strays) await fs.rm(path.join(root, s), { force: true, recursive: true });
    report.repaired = true;
  }
  return report;
}

export interface CacheListing {
  /** Cache records: key, whether it names a step or a layer's content, its layer, size and last use. */
  records: { key: string; kind: 'step' | 'content'; layer?: string; size: number; lastUsed: Date }[];
  /** Bytes of all blobs in the store. */
  blobBytes: number;
  /** Blobs in the store. */
  blobs: number;
}

export async function listCache(root: string): Promise<CacheListing> {
  const store = await BlobStore.open(root);
  const index = new CacheIndex(root);
  const records: CacheListing['records'] = [];
  for await (const { record, lastUsed } of index.entries()) {
    if (record.kind === 'parent') continue; // bookkeeping, no layer: not worth a line
    records.push({ key: record.key, kind: record.kind ?? 'step', ...(record.layer ? { layer: record.layer.digest } : {}), size: record.layer?.size ?? 0, lastUsed });
  }
  records.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  let blobBytes = 0;
  let blobs = 0;
  for await (const digest of store.list()) {
    const st = await store.stat(digest);
    blobBytes += st?.size ?? 0;
    blobs++;
  }
  return { records, blobBytes, blobs };
}

export interface PruneOptions {
  /** Keep at most this many bytes of blobs (least recently used go first). */
  keepBytes?: number;
  /** Remove what was last used longer ago than this. */
  olderThanMs?: number;
  /** Never remove anything used more recently than this (a build may be using it). Default 10 minutes. */
  graceMs?: number;
  now?: number;
}

export interface PruneReport {
  /** Cache records removed. */
  recordsRemoved: number;
  /** Blobs removed. */
  blobsRemoved: number;
  /** Bytes of the blobs removed. */
  bytesFreed: number;
  /** Bytes of the blobs kept. */
  bytesKept: number;
}

/**
 * Remove cache records by age, then by size (least recently used first), then every blob no
 * record refers to and nobody used within the grace period.
 */
export async function pruneCache(root: string, options: PruneOptions = {}): Promise<PruneReport> {
  const store = await BlobStore.open(root);
  const index = new CacheIndex(root);
  const now = options.now ?? Date.now();
  const grace = options.graceMs ?? 10 * 60 * 1000;
  const entries: { record: CacheRecord; lastUsed: Date }[] = [];
  for await (const e of index.entries()) entries.push(e);
  entries.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());

  const report: PruneReport = { recordsRemoved: 0, blobsRemoved: 0, bytesFreed: 0, bytesKept: 0 };
  const removable = (t: Date): boolean => now - t.getTime() > grace;
  const kept: typeof entries = [];
  for (const e of entries) {
    if (options.olderThanMs !== undefined && now - e.lastUsed.getTime() > options.olderThanMs && removable(e.lastUsed)) {
      await index.delete(e.record.key);
      report.recordsRemoved++;
    } else kept.push(e);
  }

  const blobInfo = new Map<string, { size: number; used: Date }>();
  for await (const digest of store.list()) {
    try {
      const st = await fs.stat(store.path(digest));
      blobInfo.set(digest, { size: st.size, used: st.mtime > st.atime ? st.mtime : st.atime });
    } catch {
      // removed meanwhile
    }
  }
  let total = [...blobInfo.values()].reduce((n, b) => n + b.size, 0);
  if (options.keepBytes !== undefined) {
    for (const e of kept.slice()) {
      if (total <= options.keepBytes) break;
      if (!removable(e.lastUsed)) continue;
      await index.delete(e.record.key);
      report.recordsRemoved++;
      kept.splice(kept.indexOf(e), 1);
      const layer = e.record.layer?.digest;
      if (layer && !kept.some((k) => k.record.layer?.digest === layer)) total -= blobInfo.get(layer)?.size ?? 0;
    }
  }

  // A blob no record refers to goes too, unless something wrote or read it within the grace
  // period: a running build may have stored it a moment before recording it.
  const referenced = new Set(kept.map((e) => e.record.layer?.digest).filter((d): d is string => d !== undefined));
  const pruning = options.olderThanMs !== undefined || options.keepBytes !== undefined;
  let bytesBefore = 0;
  for (const [digest, info] of blobInfo) {
    bytesBefore += info.size;
    if (!pruning || referenced.has(digest) || !removable(info.used)) continue;
    await store.remove(digest);
    report.blobsRemoved++;
    report.bytesFreed += info.size;
  }
  report.bytesKept = bytesBefore - report.bytesFreed;
  await removeStaleLayerIndexes(root, now);
  return report;
}

/** Layer indexes (fsindex/) not used for a week are rebuilt on demand if ever needed again. */
async function removeStaleLayerIndexes(root: string, now: number): Promise<void> {
  const dir = path.join(root, 'fsindex');
  const cutoff = now - 7 * 24 * 3600 * 1000;
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    const st = await fs.stat(file).catch(() => undefined);
    if (st && st.atimeMs < cutoff && st.mtimeMs < cutoff) await fs.rm(file, { force: true });
  }
}

/** `10GB`, `512MiB`, `1.5g`, `1000` (bytes). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const binary = m[3]!.toLowerCase().startsWith('i');
  const base = binary ? 1024 : 1000;
  const power = unit === '' ? 0 : 'kmgt'.indexOf(unit) + 1;
  return Math.round(Number(m[1]) * base ** power);
}

/** `30m`, `24h`, `7d`, `90s`. */
export function parseAge(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2]!.toLowerCase() as 's'];
  return Math.round(Number(m[1]) * unit);
}
