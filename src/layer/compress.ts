/**
 * Layer compression that uses every core and stays deterministic.
 *
 * gzip is a single deflate stream, which one core compresses at about 28 MB/s here: fifty times
 * slower than hashing. Like pigz, we cut the input into fixed blocks, deflate each block on a
 * worker thread (compression-pool.ts) with the previous block's last 32 KiB as its dictionary, end
 * every block but the last on a byte boundary (a sync flush), and join them into one gzip member.
 * zstd is simpler: a zstd stream may hold several frames, so each block is its own frame. Either
 * way the output depends only on the input, the level and the block size — never on how many
 * blocks ran at once — so every machine produces the same bytes and the same digest.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { Compression } from '../image/mediatypes.ts';
import { COLLECT_EVERY_BYTES, collectGarbage } from './collect-garbage.ts';
import { crc32Combine, compressionPool } from './compression-pool.ts';
import { releaseChunk } from './read-slabs.ts';
import { loadZstd } from './zstd.ts';

export interface CompressionOptions {
  compression: Compression;
  /** gzip 1–9 (default 6); zstd 1–19 (default 3). */
  level?: number;
  /**
   * Blocks in flight at once; never changes the output. The default keeps four per core queued,
   * so a worker never idles while the main thread hashes and writes.
   */
  concurrency?: number;
}

/** Changing these changes every layer digest lading produces: treat them as part of the format. */
export const GZIP_BLOCK_SIZE = 1024 * 1024;
export const ZSTD_BLOCK_SIZE = 4 * 1024 * 1024;
const DICTIONARY_SIZE = 32 * 1024;

export function createCompressor(options: CompressionOptions): Transform {
  const concurrency = options.concurrency ?? Math.max(8, availableParallelism() * 4);
  switch (options.compression) {
    case 'none':
      return new Transform({ transform: (chunk, _enc, cb) => cb(null, chunk) });
    case 'gzip':
      return new ParallelGzip(checkLevel('gzip', options.level ?? 6, 9), concurrency);
    case 'zstd':
      loadZstd();
      return new ParallelZstd(checkLevel('zstd', options.level ?? 3, 19), concurrency);
  }
}

function checkLevel(name: string, level: number, max: number): number {
  if (!Number.isInteger(level) || level < 1 || level > max) {
    throw new LadingError(ERROR_CODES.USAGE, `${name} level must be 1 to ${max}, not ${level}`);
  }
  return level;
}

interface Compressed {
  out: Buffer;
  crc: number;
  length: number;
}

/**
 * Cuts the input into fixed-size blocks (whatever the chunking of the input) and compresses up
 * to `concurrency` of them at once, emitting results in input order.
 */
abstract class BlockCompressor extends Transform {
  // The block being filled (from the pool, which takes it over once it is full) and its length.
  private block: Buffer | undefined;
  private filled = 0;
  private sinceCollect = 0;
  private readonly inFlight: Promise<Compressed>[] = [];

  constructor(
    private readonly blockSize: number,
    private readonly concurrency: number,
  ) {
    super();
  }

  /** Compress the first `length` bytes of `block` (which the callee takes over); `last` is the final block (possibly empty). */
  protected abstract compressBlock(block: Buffer, length: number, last: boolean): Promise<Compressed>;
  /** Bytes to emit after each block (in order) and at the very end. */
  protected abstract emitted(block: Compressed): void;
  protected abstract trailer(): Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.fill(chunk)
      .then(() => callback())
      .catch((err: unknown) => callback(err as Error));
  }

  override _flush(callback: TransformCallback): void {
    (async () => {
      this.inFlight.push(this.block ? this.compressBlock(this.block, this.filled, true) : this.compressBlock(compressionPool().block(this.blockSize), 0, true));
      this.block = undefined;
      while (this.inFlight.length > 0) this.emit_(await this.inFlight.shift()!);
      const trailer = this.trailer();
      if (trailer) this.push(trailer);
    })()
      .then(() => callback())
      .catch((err: unknown) => callback(err as Error));
  }

  private emit_(block: Compressed): void {
    this.emitted(block);
    this.push(block.out);
  }

  /**
   * Copy `chunk` into blocks. A full block is sent only once a byte after it arrives, so the
   * block layout depends on the total length only: the final block is never empty by accident of
   * how the input was chunked.
   */
  private async fill(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.block && this.filled === this.blockSize) {
        this.inFlight.push(this.compressBlock(this.block, this.blockSize, false));
        this.block = undefined;
        this.sinceCollect += this.blockSize;
        if (this.sinceCollect >= COLLECT_EVERY_BYTES) {
          this.sinceCollect = 0;
          collectGarbage();
        }
        if (this.inFlight.length >= this.concurrency) this.emit_(await this.inFlight.shift()!);
      }
      if (!this.block) {
        this.block = compressionPool().block(this.blockSize);
        this.filled = 0;
      }
      const n = chunk.copy(this.block, this.filled, at);
      this.filled += n;
      at += n;
    }
    // Copied: a chunk read into a slab (read-slabs.ts) may now be overwritten.
    releaseChunk(chunk);
  }
}

// Header of a gzip member with no name, no mtime and "unknown" OS, so no host detail leaks in.
function gzipHeader(level: number): Buffer {
  const xfl = level >= 9 ? 2 : level <= 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0xff]);
}

class ParallelGzip extends BlockCompressor {
  private previousTail: Buffer | undefined;
  private crc = 0;
  private inputSize = 0;

  constructor(
    private readonly level: number,
    concurrency: number,
  ) {
    super(GZIP_BLOCK_SIZE, concurrency);
    this.push(gzipHeader(level));
  }

  protected override async compressBlock(block: Buffer, length: number, last: boolean): Promise<Compressed> {
    const dictionary = this.previousTail;
    // Copied: the block itself moves to a worker thread.
    if (!last) this.previousTail = Buffer.from(block.subarray(length - DICTIONARY_SIZE, length));
    const { out, crc } = await compressionPool().deflate(block, length, dictionary, this.level, last);
    return { out, crc, length };
  }

  /** Blocks arrive in input order; their CRCs combine into the member's CRC. */
  protected override emitted(block: Compressed): void {
    this.crc = crc32Combine(this.crc, block.crc, block.length);
    this.inputSize += block.length;
  }

  protected override trailer(): Buffer {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.inputSize % 0x100000000, 4);
    return trailer;
  }
}

class ParallelZstd extends BlockCompressor {
  constructor(
    private readonly level: number,
    concurrency: number,
  ) {
    super(ZSTD_BLOCK_SIZE, concurrency);
  }

  protected override async compressBlock(block: Buffer, length: number): Promise<Compressed> {
    return { out: await compressionPool().zstd(block, length, this.level), crc: 0, length };
  }

  protected override emitted(): void {}

  protected override trailer(): undefined {
    return undefined;
  }
}
