/**
 * Content digests of context files, remembered by what `stat` says about them (path, size, mtime,
 * ctime, inode, mode). A warm rebuild of an unchanged context reads no file content at all.
 * Cold hashing runs several files at once. A file that changes while it is read is read again,
 * and a file that keeps changing is an error: a wrong digest never enters the cache.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';

interface Entry {
  /** `size:mtimeMs:ctimeMs:ino:mode` */
  sig: string;
  digest: string;
}

const FORMAT = 2;
const MAX_REREADS = 3;

export function statSignature(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}:${st.mode}`;
}

export class StatCache {
  // A plain object straight from JSON.parse: copying 20,000 entries into a Map cost a warm
  // rebuild more time than parsing them. Keys are absolute paths, so none can meet a prototype
  // property ('/…' is never 'constructor' or '__proto__').
  private entries: Record<string, Entry> = {};
  private dirty = false;
  private readonly file?: string;
  /** Files whose content was read (for tests and --explain). */
  contentReads = 0;
  /** Of those, files read only to hash them (a layer that holds them reads them again). */
  hashOnlyReads = 0;
  private active = 0;
  private readonly hashing = new Map<string, Promise<string>>();
  private hasher?: (abs: string) => Promise<string>;
  private readonly waiting: (() => void)[] = [];
  private readonly concurrency: number;

  private constructor(file: string | undefined, concurrency: number) {
    this.file = file;
    this.concurrency = concurrency;
  }

  /** Load the cache kept at `file` (missing or unreadable means empty). */
  /**
   * `hasher`, when given, hashes small files elsewhere (lading passes its worker threads, so a
   * cold context is hashed on every core).
   */
  static async load(file: string | undefined, concurrency = 8, hasher?: (abs: string) => Promise<string>): Promise<StatCache> {
    const cache = new StatCache(file, concurrency);
    cache.hasher = hasher;
    if (!file) return cache;
    try {
      const raw = JSON.parse(await fs.readFile(file, 'utf8')) as { format: number; entries: Record<string, Entry> };
      if (raw.format === FORMAT && typeof raw.entries === 'object' && raw.entries !== null) cache.entries = raw.entries;
    } catch {
      // A missing or damaged cache only costs a re-hash.
    }
    return cache;
  }

  /** The digest if the cache knows the file with this signature. */
  known(abs: string, sig: string): string | undefined {
    const hit = this.entries[abs];
    return hit && hit.sig === sig ? hit.digest : undefined;
  }

  /**
   * Record a digest found elsewhere (the layer writer's one pass over a cold file), if the file
   * still has the signature it had when walked; otherwise nothing is recorded.
   */
  remember(abs: string, sig: string, digest: string, after?: Stats): boolean {
    let now: string;
    try {
      now = statSignature(after ?? lstatSync(abs));
    } catch {
      return false;
    }
    if (now !== sig) return false;
    this.entries[abs] = { sig, digest };
    this.dirty = true;
    this.contentReads++;
    return true;
  }

  /** The sha256 digest of the file at `abs`, whose lstat signature is `sig`. */
  digest(abs: string, sig: string): Promise<string> {
    const hit = this.known(abs, sig);
    if (hit !== undefined) return Promise.resolve(hit);
    // Builds of several platforms ask for the same files at once: hash each once.
    const key = `${abs}\0${sig}`;
    let pending = this.hashing.get(key);
    if (!pending) {
      pending = this.hash(abs, sig).finally(() => this.hashing.delete(key));
      this.hashing.set(key, pending);
    }
    return pending;
  }

  private async hash(abs: string, sig: string): Promise<string> {
    await this.acquire();
    try {
      let before = sig;
      for (let attempt = 0; attempt < MAX_REREADS; attempt++) {
        const digest = await hashFile(abs, this.hasher);
        this.contentReads++;
        this.hashOnlyReads++;
        let after: Stats;
        try {
          after = lstatSync(abs);
        } catch (err) {
          throw fsError(ERROR_CODES.CONTEXT, 'read', abs, err);
        }
        const now = statSignature(after);
        if (now === before) {
          this.entries[abs] = { sig: now, digest };
          this.dirty = true;
          return digest;
        }
        before = now;
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
      await fs.writeFile(tmp, JSON.stringify({ format: FORMAT, entries: this.entries }));
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

/**
 * Files up to this size are read in one synchronous call: on a cold 20,000-file context the
 * promise and stream machinery of an async read costs more than the read itself, and nothing
 * else needs the event loop while the key is being computed.
 */
const SYNC_READ_LIMIT = 2 * 1024 * 1024;

async function hashFile(abs: string, hasher?: (abs: string) => Promise<string>): Promise<string> {
  const hash = createHash('sha256');
  try {
    const st = lstatSync(abs);
    if (hasher && st.size <= SYNC_READ_LIMIT) return await hasher(abs);
    if (st.size <= SYNC_READ_LIMIT) hash.update(readFileSync(abs));
    else for await (const chunk of createReadStream(abs, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  } catch (err) {
    throw fsError(ERROR_CODES.CONTEXT, 'read', abs, err, 'make the file readable by the user running lading, or exclude it in .dockerignore');
  }
  return `sha256:${hash.digest('hex')}`;
}
