/**
 * Layer blobs to tar bytes. The compression is read from the blob's first bytes, not from its
 * media type: registries and old tools label layers loosely, the magic number never lies.
 */
import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { loadZstd, zstdDecompressStream } from './zstd.ts';

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
 * The tar stream inside a layer blob (gzip, zstd or uncompressed). Errors of the input and of the
 * decompressor end the returned stream.
 */
export async function decompressLayer(input: Readable): Promise<Readable> {
  // Read the head through the stream's iterator and hand the rest on with it: un-reading into a
  // stream (unshift) races with its end when the whole blob has already arrived.
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const headParts: Buffer[] = [];
  let have = 0;
  while (have < 6) {
    const next = await chunks.next();
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    headParts.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(headParts);
  let kind: DetectedCompression;
  try {
    kind = detectCompression(head);
    // Fails clearly when the optional zstd module cannot load.
    if (kind === 'zstd') loadZstd();
  } catch (err) {
    await chunks.return?.();
    input.destroy();
    throw err;
  }
  const whole = Readable.from(
    (async function* () {
      if (head.length > 0) yield head;
      for (;;) {
        const next = await chunks.next();
        if (next.done) return;
        yield next.value;
      }
    })(),
    { objectMode: false },
  );
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  const stages: Readable[] = [whole];
  if (kind === 'gzip') stages.push(zlib.createGunzip({ chunkSize: 256 * 1024 }));
  if (kind === 'zstd') stages.push(zstdDecompressStream());
  for (const stage of stages) stage.on('error', (err: unknown) => out.destroy(explain(err)));
  // A reader that gives up early must not leave the source open (a registry socket, a file).
  out.on('close', () => {
    for (const stage of stages) if (!stage.destroyed) stage.destroy();
    if (!input.destroyed) input.destroy();
  });
  let tail: Readable = whole;
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
