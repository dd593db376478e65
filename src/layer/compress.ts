/**
 * Layer compression that uses every core and stays deterministic.
 *
 * gzip is a single deflate stream, which one core compresses at about 28 MB/s here: fifty times
 * slower than hashing. Like pigz, we cut the input into fixed blocks, deflate each block on a
 * worker thread (deflate-pool.ts) with the previous block's last 32 KiB as its dictionary, end
 * every block but
 * the last on a byte boundary (a sync flush), and join them into one gzip member. The output
 * depends only on the input, the level and the block size, never on how many blocks ran at once,
 * so every machine produces the same bytes and the same digest.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { Compression } from '../image/mediatypes.ts';
import { crc32Combine, deflatePool } from './deflate-pool.ts';

export interface CompressionOptions {
  compression: Compression;
  /** gzip 1–9 (default 6). */
  level?: number;
  /**
   * Blocks in flight at once; never changes the output. The default keeps two per core queued,
   * so a worker never idles while the main thread hashes and writes.
   */
  concurrency?: number;
}

/** Changing this changes every layer digest lading produces: treat it as part of the format. */
export const GZIP_BLOCK_SIZE = 1024 * 1024;
const DICTIONARY_SIZE = 32 * 1024;

// Header of a gzip member with no name, no mtime and "unknown" OS, so no host detail leaks in.
function gzipHeader(level: number): Buffer {
  const xfl = level >= 9 ? 2 : level <= 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0xff]);
}

export function createCompressor(options: CompressionOptions): Transform {
  switch (options.compression) {
    case 'none':
      return new Transform({ transform: (chunk, _enc, cb) => cb(null, chunk) });
    case 'gzip':
      return new ParallelGzip(options.level ?? 6, options.concurrency ?? Math.max(4, availableParallelism() * 2));
    case 'zstd':
      throw new LadingError(ERROR_CODES.USAGE, 'zstd compression is not available in this version', {
        hint: 'use --compression gzip or --compression uncompressed',
      });
  }
}

class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly concurrency: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private previousTail: Buffer | undefined;
  private readonly inFlight: Promise<{ out: Buffer; crc: number; length: number }>[] = [];
  private crc = 0;
  private inputSize = 0;

  constructor(level: number, concurrency: number) {
    super();
    if (!Number.isInteger(level) || level < 1 || level > 9) {
      throw new LadingError(ERROR_CODES.USAGE, `gzip level must be 1 to 9, not ${level}`);
    }
    this.level = level;
    this.concurrency = Math.max(1, concurrency);
    this.push(gzipHeader(level));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.inputSize += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainFullBlocks()
      .then(() => callback())
      .catch((err: unknown) => callback(err as Error));
  }

  override _flush(callback: TransformCallback): void {
    (async () => {
      await this.drainFullBlocks();
      const rest = this.takeBlock(this.pendingBytes);
      this.inFlight.push(this.deflate(rest, this.previousTail, true));
      while (this.inFlight.length > 0) this.emitBlock(await this.inFlight.shift()!);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.inputSize % 0x100000000, 4);
      this.push(trailer);
    })()
      .then(() => callback())
      .catch((err: unknown) => callback(err as Error));
  }

  private async drainFullBlocks(): Promise<void> {
    while (this.pendingBytes > GZIP_BLOCK_SIZE) {
      // Keep at least one byte back so the final block (Z_FINISH) is never empty by accident
      // of chunk boundaries: the block layout depends on the total length only.
      const block = this.takeBlock(GZIP_BLOCK_SIZE);
      const dictionary = this.previousTail;
      // Copied: the block itself moves to a worker thread.
      this.previousTail = Buffer.from(block.subarray(block.length - DICTIONARY_SIZE));
      this.inFlight.push(this.deflate(block, dictionary, false));
      if (this.inFlight.length >= this.concurrency) this.emitBlock(await this.inFlight.shift()!);
    }
  }

  private async deflate(block: Buffer, dictionary: Buffer | undefined, last: boolean): Promise<{ out: Buffer; crc: number; length: number }> {
    const length = block.length;
    const { out, crc } = await deflatePool().deflate(block, dictionary, this.level, last);
    return { out, crc, length };
  }

  /** Blocks are emitted in input order; their CRCs combine into the member's CRC. */
  private emitBlock(block: { out: Buffer; crc: number; length: number }): void {
    this.crc = crc32Combine(this.crc, block.crc, block.length);
    this.push(block.out);
  }

  private takeBlock(size: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const block = all.subarray(0, size);
    const rest = all.subarray(size);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return Buffer.from(block);
  }
}
