/**
 * Layer blobs to tar bytes. The compression is read from the blob's first bytes, not from its
 * media type: registries and old tools label layers loosely, the magic number never lies.
 */
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { ERROR_CODES, LadingError } from '../errors.ts';

export type DetectedCompression = 'gzip' | 'zstd' | 'none';

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const OTHER_MAGICS: { name: string; bytes: number[] }[] = [
  { name: 'bzip2', bytes: [0x42, 0x5a, 0x68] },
  { name: 'xz', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
];

function startsWith(head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/** The compression of a blob whose first bytes are `head` (at least 6 when the blob has them). */
export function detectCompression(head: Buffer): DetectedCompression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip';
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd';
  for (const other of OTHER_MAGICS) {
    if (startsWith(head, other.bytes)) {
      throw new LadingError(ERROR_CODES.IMAGE, `this layer is ${other.name}-compressed, which OCI images do not allow`, {
        hint: 'rebuild the base image with gzip or uncompressed layers',
      });
    }
  }
  return 'none';
}

/**
 * The tar stream inside a layer blob (gzip or uncompressed). Errors of the input and of the
 * decompressor end the returned stream. zstd is recognised and refused with a clear error.
 */
export async function decompressLayer(input: Readable): Promise<Readable> {
  const head = await peek(input, 6);
  const kind = detectCompression(head);
  if (kind === 'zstd') {
    input.destroy();
    throw new LadingError(ERROR_CODES.IMAGE, 'zstd-compressed layers are not supported yet', {
      hint: 'use a base image with gzip layers (for example, re-push it with `skopeo copy --dest-compress-format gzip`)',
    });
  }
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  const stages: Readable[] = [input];
  if (kind === 'gzip') stages.push(zlib.createGunzip({ chunkSize: 256 * 1024 }));
  for (const stage of stages) stage.on('error', (err: unknown) => out.destroy(explain(err)));
  // A reader that gives up early must not leave the source open (a registry socket, a file).
  out.on('close', () => {
    for (const stage of stages) if (!stage.destroyed) stage.destroy();
  });
  let tail: Readable = input;
  for (const stage of stages.slice(1)) tail = tail.pipe(stage as zlib.Gunzip);
  tail.pipe(out);
  return out;
}

function explain(err: unknown): Error {
  if (err instanceof LadingError) return err;
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) {
    return new LadingError(ERROR_CODES.TAR, `the layer's gzip data is corrupt (${e.message})`, { cause: err });
  }
  return e instanceof Error ? e : new Error(String(err));
}

/** Read at least `n` bytes (fewer only at the end) and put them back, so the stream is whole. */
async function peek(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const chunk = await readChunk(input);
    if (chunk === null) break;
    chunks.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) input.unshift(head);
  return head;
}

function readChunk(input: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const chunk = input.read() as Buffer | null;
      if (chunk !== null) {
        cleanup();
        resolve(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        return;
      }
      if (input.readableEnded) {
        cleanup();
        resolve(null);
      }
    };
    const onEnd = (): void => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      input.off('readable', attempt);
      input.off('end', onEnd);
      input.off('error', onError);
    };
    input.on('readable', attempt);
    input.on('end', onEnd);
    input.on('error', onError);
    attempt();
  });
}
