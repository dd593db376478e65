/**
 * The content-addressed blob store on disk: `blobs/sha256/<hex>`, written through a temporary file
 * that is verified and renamed, so a reader never sees a partial blob and two builds sharing the
 * folder never corrupt it. Reads verify the digest as they stream.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { digestAlgorithm, digestHex, isDigest } from '../image/digest.ts';
import type { BlobSource } from '../image/image.ts';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** A blob being written: write to `stream`, then `commit` (verifies and publishes) or `abort`. */
export interface BlobWriter {
  readonly stream: Writable;
  /** Bytes written so far. */
  readonly written: () => number;
  commit(expected?: BlobInfo | string): Promise<BlobInfo>;
  abort(): Promise<void>;
}

// Temporary files are removed when a store opens if their writer is gone, or older than this.
const STALE_TMP_MS = 24 * 60 * 60 * 1000;

export class BlobStore {
  readonly root: string;
  private readonly blobDir: string;
  private readonly tmpDir: string;
  /** Blobs this process wrote and hashed on their way in: copied out without hashing them again. */
  private readonly writtenHere = new Set<string>();

  private constructor(root: string) {
    this.root = root;
    this.blobDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
  }

  /** Open (creating when needed) the store at `root` and remove temporary files of dead writers. */
  static async open(root: string): Promise<BlobStore> {
    const store = new BlobStore(path.resolve(root));
    try {
      await fs.mkdir(path.join(store.blobDir, 'sha256'), { recursive: true });
      await fs.mkdir(store.tmpDir, { recursive: true });
    } catch (err) {
      throw fsError(ERROR_CODES.STORE, 'create the cache folder', root, err, 'choose a writable folder with --cache-dir or LADING_CACHE_DIR');
    }
    await store.removeStaleTemporaries();
    return store;
  }

  path(digest: string): string {
    checkDigest(digest);
    return path.join(this.blobDir, digestAlgorithm(digest), digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await fs.access(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await fs.stat(this.path(digest));
      return { digest, size: st.size };
    } catch {
      return undefined;
    }
  }

  /** Stream a blob, verifying it as it is read: the stream errors at its end if the digest differs. */
  openRead(digest: string): Readable {
    const file = createReadStream(this.path(digest));
    const verify = verifyingStream(digest, `blob ${digest} in ${this.root}`);
    file.on('error', (err) => {
      verify.destroy(
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? new LadingError(ERROR_CODES.STORE, `blob ${digest} is not in the store ${this.root}`)
          : err,
      );
    });
    return file.pipe(verify);
  }

  /**
   * Copy a blob this process wrote (and hashed as it wrote it) to `file` inside the kernel (a
   * reflink where the file system has them), without reading it back through the process.
   * Returns false for any other blob: those are read through `openRead`, which verifies them.
   */
  async copyOut(digest: string, file: string): Promise<boolean> {
    if (!this.writtenHere.has(digest)) return false;
    try {
      await fs.copyFile(this.path(digest), file, fsConstants.COPYFILE_FICLONE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await this.has(digest))) {
        // Pruned by another process since: let the caller read (and report) it as usual.
        this.writtenHere.delete(digest);
        return false;
      }
      throw err;
    }
    return true;
  }

  async readBytes(digest: string): Promise<Buffer> {
    let data: Buffer;
    try {
      data = await fs.readFile(this.path(digest));
    } catch (err) {
      throw fsError(ERROR_CODES.STORE, 'read blob', digest, err);
    }
    const actual = `${digestAlgorithm(digest)}:${createHash(digestAlgorithm(digest)).update(data).digest('hex')}`;
    if (actual !== digest) {
      throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `blob ${digest} in ${this.root} is corrupt (its content hashes to ${actual})`, {
        hint: 'run `lading cache verify --repair` to remove corrupt blobs',
      });
    }
    return data;
  }

  async putBytes(data: Uint8Array, expected?: string): Promise<BlobInfo> {
    const writer = await this.createWriter();
    await new Promise<void>((resolve, reject) => {
      writer.stream.on('error', reject);
      writer.stream.end(data, () => resolve());
    });
    return writer.commit(expected);
  }

  /** Copy a stream into the store, checking it against `expected` when given. */
  async putStream(input: Readable, expected?: BlobInfo | string): Promise<BlobInfo> {
    const writer = await this.createWriter();
    try {
      await pipeline(input, writer.stream);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer.commit(expected);
  }

  /** `onWritten` is called with each chunk once it is in the file (and hashed): the caller may reuse its memory. */
  async createWriter(options: { onWritten?: (chunk: Buffer) => void } = {}): Promise<BlobWriter> {
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.part`);
    let handle: FileHandle;
    try {
      handle = await fs.open(tmp, 'wx');
    } catch (err) {
      throw fsError(ERROR_CODES.STORE, 'write to the store', this.tmpDir, err);
    }
    const stream = new HashingFileWriter(handle, options.onWritten);
    let finished = false;
    const settled = new Promise<void>((resolve) => stream.once('close', resolve));
    return {
      stream,
      written: () => stream.written,
      commit: async (expected) => {
        if (finished) throw new LadingError(ERROR_CODES.INTERNAL, 'blob writer used twice');
        finished = true;
        if (!stream.writableEnded) stream.end();
        await settled;
        if (stream.failure) {
          await fs.rm(tmp, { force: true });
          throw fsError(ERROR_CODES.STORE, 'write to the store', tmp, stream.failure);
        }
        const info: BlobInfo = { digest: stream.digest(), size: stream.written };
        const want = typeof expected === 'string' ? { digest: expected, size: undefined } : expected;
        if (want && (want.digest !== info.digest || (want.size !== undefined && want.size !== info.size))) {
          await fs.rm(tmp, { force: true });
          throw new LadingError(
            ERROR_CODES.DIGEST_MISMATCH,
            `content does not match its digest: expected ${want.digest}${want.size !== undefined ? ` (${want.size} bytes)` : ''}, got ${info.digest} (${info.size} bytes)`,
            { hint: 'the source sent different bytes than it announced; nothing was stored' },
          );
        }
        const dest = this.path(info.digest);
        try {
          await fs.rename(tmp, dest);
        } catch (err) {
          await fs.rm(tmp, { force: true });
          throw fsError(ERROR_CODES.STORE, 'store blob', dest, err);
        }
        this.writtenHere.add(info.digest);
        return info;
      },
      abort: async () => {
        if (finished) return;
        finished = true;
        stream.destroy();
        await settled;
        await fs.rm(tmp, { force: true });
      },
    };
  }

  /** Every digest in the store. */
  async *list(): AsyncGenerator<string> {
    for (const algo of ['sha256', 'sha512']) {
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.blobDir, algo));
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        const digest = `${algo}:${name}`;
        if (isDigest(digest)) yield digest;
      }
    }
  }

  async remove(digest: string): Promise<void> {
    this.writtenHere.delete(digest);
    await fs.rm(this.path(digest), { force: true });
  }

  /**
   * Remove what dead writers left: `tmp/PID-…` files and folders, and the `NAME.PID[.RAND].tmp`
   * files that atomic writes of small records leave beside their target when the process is
   * killed between write and rename (cache records in `index/<shard>/`, and the `statcache/`,
   * `fsindex/` and `explain/` folders). Left alone they pile up after every `kill -9`.
   */
  private async removeStaleTemporaries(): Promise<void> {
    const now = Date.now();
    const sweep = async (dir: string, pidOf: (name: string) => number | undefined): Promise<void> => {
      let names: string[];
      try {
        names = await fs.readdir(dir);
      } catch {
        return;
      }
      await Promise.all(
        names.map(async (name) => {
          const pid = pidOf(name);
          if (pid === undefined) return;
          const full = path.join(dir, name);
          try {
            const st = await fs.stat(full);
            if (!isProcessAlive(pid) || now - st.mtimeMs > STALE_TMP_MS) await fs.rm(full, { recursive: true, force: true });
          } catch {
            // Another process removed it first.
          }
        }),
      );
    };
    const byPrefix = (name: string): number => Number.parseInt(name.split('-')[0] ?? '', 10);
    const bySuffix = (name: string): number | undefined => {
      const m = /\.(\d+)(?:\.[0-9a-f]+)?\.tmp$/.exec(name);
      return m ? Number(m[1]) : undefined;
    };
    const shards = await fs.readdir(path.join(this.root, 'index')).catch(() => [] as string[]);
    await Promise.all([
      sweep(this.tmpDir, byPrefix),
      ...['statcache', 'fsindex', 'explain'].map((d) => sweep(path.join(this.root, d), bySuffix)),
      ...shards.map((shard) => sweep(path.join(this.root, 'index', shard), bySuffix)),
    ]);
  }

  /** A private temporary folder inside the store (same file system, so renames are atomic). */
  async makeTempDir(prefix: string): Promise<string> {
    return fs.mkdtemp(path.join(this.tmpDir, `${process.pid}-${prefix}-`));
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function checkDigest(digest: string): void {
  if (!isDigest(digest)) {
    throw new LadingError(ERROR_CODES.IMAGE, `invalid digest "${digest}"`, {
      hint: 'a digest is "sha256:" followed by 64 lowercase hex characters',
    });
  }
}

/** A pass-through stream that fails at its end when the bytes do not hash to `digest`. */
export function verifyingStream(digest: string, what: string): Transform {
  const hash = createHash(digestAlgorithm(digest));
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const actual = `${digestAlgorithm(digest)}:${hash.digest('hex')}`;
      if (actual !== digest) {
        cb(new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${what} does not match its digest (got ${actual})`));
      } else cb();
    },
  });
}

/** Writes to a file and hashes in the same pass, so the digest is known when the last byte lands. */
class HashingFileWriter extends Writable {
  written = 0;
  failure: unknown;
  private readonly hash = createHash('sha256');
  private readonly handle: FileHandle;
  private readonly onWritten: (chunk: Buffer) => void;

  constructor(handle: FileHandle, onWritten: (chunk: Buffer) => void = () => {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.handle = handle;
    this.onWritten = onWritten;
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.hash.update(chunk);
    this.written += chunk.length;
    this.handle.write(chunk).then(
      () => {
        this.onWritten(chunk);
        cb();
      },
      (err: Error) => cb(err),
    );
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    for (const b of buffers) {
      this.hash.update(b);
      this.written += b.length;
    }
    this.handle.writev(buffers).then(
      () => {
        for (const b of buffers) this.onWritten(b);
        cb();
      },
      (err: Error) => cb(err),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.handle.close().then(() => cb(), (err: Error) => cb(err));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err) this.failure = err;
    this.handle.close().then(() => cb(err), () => cb(err));
  }
}

/** The store as a BlobSource for images whose blobs it holds. */
export function storeBlobSource(store: BlobStore): BlobSource {
  return {
    open: async (desc) => store.openRead(desc.digest),
    read: async (desc) => store.readBytes(desc.digest),
  };
}
