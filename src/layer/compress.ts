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
import { crc32Combine, compressionPool } from './compression-pool.ts';
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
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly inFlight: Promise<Compressed>[] = [];

  constructor(
    private readonly blockSize: number,
    private readonly concurrency: number,
  ) {
    super();
  }

  /** Compress one block; `last` is the final block (possibly empty). */
  protected abstract compressBlock(block: Buffer, last: boolean): Promise<Compressed>;
  /** Bytes to emit after each block (in order) and at the very end. */
  protected abstract emitted(block: Compressed): void;
  protected abstract trailer(): Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainFullBlocks()
      .then(() => callback())
      .catch((err: unknown) => callback(err as Error));
  }

  override _flush(callback: TransformCallback): void {
    (async () => {
      await this.drainFullBlocks();
      this.inFlight.push(this.compressBlock(this.takeBlock(this.pendingBytes), true));
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

  private async drainFullBlocks(): Promise<void> {
    // Keep at least one byte back, so that the block layout depends on the total length only:
    // the final block is never empty by accident of how the input was chunked.
    while (this.pendingBytes > this.blockSize) {
      this.inFlight.push(this.compressBlock(this.takeBlock(this.blockSize), false));
      if (this.inFlight.length >= this.concurrency) this.emit_(await this.inFlight.shift()!);
    }
  }

  private takeBlock(size: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const rest = all.subarray(size);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    // A copy of its own: the block's memory moves to a worker thread.
    return Buffer.from(all.subarray(0, size));
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

  protected override async compressBlock(block: Buffer, last: boolean): Promise<Compressed> {
    const dictionary = this.previousTail;
    // Copied: the block itself moves to a worker thread.
    if (!last) this.previousTail = Buffer.from(block.subarray(block.length - DICTIONARY_SIZE));
    const length = block.length;
    const { out, crc } = await compressionPool().deflate(block, dictionary, this.level, last);
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

  protected override async compressBlock(block: Buffer): Promise<Compressed> {
    const length = block.length;
    return { out: await compressionPool().zstd(block, this.level), crc: 0, length };
  }

  protected override emitted(): void {}

  protected override trailer(): undefined {
    return undefined;
  }
}
