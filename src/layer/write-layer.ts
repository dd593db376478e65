/**
 * One streaming pass from entries to a stored layer blob: tar → sha256 (diffID) → compress →
 * sha256 (digest) and size → store. Memory does not grow with the layer's size.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression, ImageFormat } from '../image/mediatypes.ts';
import { layerMediaType } from '../image/mediatypes.ts';
import type { LayerDescriptor } from '../image/types.ts';
import type { BlobWriter } from '../store/blob-store.ts';
import { createCompressor } from './compress.ts';
import { recycleCompressedChunk } from './compression-pool.ts';
import { createTarStream, type TarWriteOptions } from './tar-writer.ts';
import type { LayerEntry } from './entry.ts';

export interface LayerWriteOptions extends TarWriteOptions {
  compression?: Compression;
  level?: number;
  format?: ImageFormat;
  /** Compression concurrency (defaults to the core count); never changes the bytes. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as uncompressed bytes pass through, for progress reporting. */
  onBytes?: (uncompressed: number) => void;
  /** Called as compressed bytes are stored, for progress reporting. */
  onCompressedBytes?: (compressed: number) => void;
}

/** Where a finished layer goes: something that accepts a stream and publishes it by digest. */
export interface LayerSink {
  /** `onWritten`, when the sink supports it, hears of each chunk once it is stored, so its memory can be reused. */
  createWriter(options?: { onWritten?: (chunk: Buffer) => void }): Promise<BlobWriter>;
}

/** A pass-through that hashes and counts what flows through it. */
export class DigestCounter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private readonly onBytes?: (n: number) => void;

  constructor(onBytes?: (n: number) => void) {
    super({ highWaterMark: 1024 * 1024 });
    this.onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

/** Compress and store an uncompressed tar stream, returning the layer's two names and size. */
export async function storeTarStream(tarStream: Readable, sink: LayerSink, options: LayerWriteOptions = {}): Promise<LayerDescriptor> {
  const compression = options.compression ?? 'gzip';
  const writer = await sink.createWriter({ onWritten: recycleCompressedChunk });
  const uncompressed = new DigestCounter(options.onBytes);
  const compressor = createCompressor({ compression, level: options.level, concurrency: options.concurrency });
  try {
    if (options.onCompressedBytes) await pipeline(tarStream, uncompressed, compressor, counter(options.onCompressedBytes), writer.stream, { signal: options.signal });
    else await pipeline(tarStream, uncompressed, compressor, writer.stream, { signal: options.signal });
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const diffID = uncompressed.digest();
  const info = await writer.commit();
  return {
    mediaType: layerMediaType(options.format ?? 'oci', compression),
    digest: info.digest,
    size: info.size,
    diffID: compression === 'none' ? info.digest : diffID,
  };
}

/** Write `entries` as a layer into `sink`. */
export async function writeLayer(entries: LayerEntry[], sink: LayerSink, options: LayerWriteOptions = {}): Promise<LayerDescriptor> {
  return storeTarStream(createTarStream(entries, { epoch: options.epoch, onEntriesWritten: options.onEntriesWritten }), sink, options);
}
