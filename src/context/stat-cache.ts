/**
 * Content digests of context files, remembered by what `stat` says about them (path, size, mtime,
 * ctime, inode, mode). A warm rebuild of an unchanged context reads no file content at all.
 * Cold hashing runs several files at once. A file that changes while it is read is read again,
 * and a file that keeps changing is an error: a wrong digest never enters the cache.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';

interface Entry {
  /** `size:mtimeNs:ctimeNs:ino:mode` */
  sig: string;
  digest: string;
}

const FORMAT = 1;
const MAX_REREADS = 3;

export function statSignature(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.mode}`;
}

export class StatCache {
  private readonly entries = new Map<string, Entry>();
  private dirty = false;
  private readonly file?: string;
  /** Files whose content was read (for tests and --explain). */
  contentReads = 0;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly concurrency: number;

  private constructor(file: string | undefined, concurrency: number) {
    this.file = file;
    this.concurrency = concurrency;
  }

  /** Load the cache kept at `file` (missing or unreadable means empty). */
  static async load(file: string | undefined, concurrency = 8): Promise<StatCache> {
    const cache = new StatCache(file, concurrency);
    if (!file) return cache;
    try {
      const raw = JSON.parse(await fs.readFile(file, 'utf8')) as { format: number; entries: Record<string, Entry> };
      if (raw.format === FORMAT) for (const [k, v] of Object.entries(raw.entries)) cache.entries.set(k, v);
    } catch {
      // A missing or damaged cache only costs a re-hash.
    }
    return cache;
  }

  /** The sha256 digest of the file at `abs`, whose lstat is `st`. */
  async digest(abs: string, st: BigIntStats): Promise<string> {
    const sig = statSignature(st);
    const hit = this.entries.get(abs);
    if (hit && hit.sig === sig) return hit.digest;
    await this.acquire();
    try {
      let before = st;
      for (let attempt = 0; attempt < MAX_REREADS; attempt++) {
        const digest = await hashFile(abs);
        this.contentReads++;
        let after: BigIntStats;
        try {
          after = await fs.lstat(abs, { bigint: true });
        } catch (err) {
          throw fsError(ERROR_CODES.CONTEXT, 'read', abs, err);
        }
        if (statSignature(after) === statSignature(before)) {
          this.entries.set(abs, { sig: statSignature(after), digest });
          this.dirty = true;
          return digest;
        }
        before = after;
      }
      throw new LadingError(ERROR_CODES.CONTEXT, `${abs} kept changing while it was being read`, {
        hint: 'stop whatever writes to the build context, or exclude the file in .dockerignore',
      });
    } finally {
      this.release();
    }
  }

  async save(): Promise<void> {
    if (!this.file || !this.dirty) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await fs.writeFile(tmp, JSON.stringify({ format: FORMAT, entries: Object.fromEntries(this.entries) }));
      await fs.rename(tmp, this.file);
      this.dirty = false;
    } catch {
      // The cache is an optimisation; failing to save it must not fail the build.
      await fs.rm(tmp, { force: true });
    }
  }

  private async acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

async function hashFile(abs: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  } catch (err) {
    throw fsError(ERROR_CODES.CONTEXT, 'read', abs, err, 'make the file readable by the user running lading, or exclude it in .dockerignore');
  }
  return `sha256:${hash.digest('hex')}`;
}
