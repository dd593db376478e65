import test from 'ava';
import { createHash } from 'node:crypto';
import { constants, deflateRawSync, gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { createCompressor } from '../../src/layer/compress.ts';
import { incompressibleRuns } from '../../src/layer/incompressible.ts';

/** Deterministic pseudo-random bytes (sha256 in counter mode), so failures reproduce. */
function noise(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, n = 0; i < size; i += 32, n++) createHash('sha256').update(`${seed}:${n}`).digest().copy(out, i);
  return out;
}

function text(size: number, seed = 0): Buffer {
  const words = ['const', 'return', 'function', 'import', 'export', 'value', 'stream', 'buffer', 'layer', 'digest'];
  const parts: string[] = [];
  let n = 0;
  for (let i = seed; n < size; i++) {
    const w = `${words[(i * 7) % words.length]} ${words[(i * 3 + 1) % words.length]}${i % 5 === 0 ? ` = ${i};\n` : ' '}`;
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

test('random bytes and real deflate output are found; text, zeros and short runs are not', (t) => {
  t.deepEqual(incompressibleRuns(noise(64 * 1024, 'a'), 16 * 1024), [0, 64 * 1024]);
  // Words picked by noise, then deflated: what a .gz or .png in a context holds.
  const words = ['const', 'return', 'function', 'import', 'export', 'value', 'stream', 'buffer', 'layer', 'digest', '\n', '{', '}', ' = ', '42'];
  const source = Buffer.from([...noise(200_000, 'w')].map((b) => words[b % words.length]).join(' '));
  const alreadyCompressed = deflateRawSync(source, { level: 9 });
  const runs = incompressibleRuns(alreadyCompressed, 16 * 1024);
  let storedBytes = 0;
  for (let k = 0; k < runs.length; k += 2) storedBytes += runs[k + 1]! - runs[k]!;
  t.true(storedBytes >= 0.9 * alreadyCompressed.length, `deflate output looks incompressible: ${storedBytes} of ${alreadyCompressed.length} bytes`);
  t.deepEqual(incompressibleRuns(text(64 * 1024), 4096), []);
  t.deepEqual(incompressibleRuns(Buffer.alloc(64 * 1024), 4096), []);
  // 12 KiB of noise between text: kept out under a 16 KiB minimum; under a 4 KiB one, the two whole
  // segments inside it, widened by the 512-byte records of noise on either side.
  const mixed = Buffer.concat([text(10_000), noise(8192 + 4096, 'b'), text(20_000)]);
  t.deepEqual(incompressibleRuns(mixed, 16 * 1024), []);
  t.deepEqual(incompressibleRuns(mixed, 4096), [10_240, 22_016]);
  // The end: whole 512-byte records of noise are stored, the partial one after them is not.
  t.deepEqual(incompressibleRuns(noise(10_000, 'c'), 4096), [0, 9728]);
});

test('high-entropy bytes that deflate could still shrink are not stored', (t) => {
  // Noise that repeats every 2 KiB: flat byte counts, but LZ77 matches everywhere.
  const unit = noise(2048, 'd');
  t.deepEqual(incompressibleRuns(Buffer.concat(Array.from({ length: 32 }, () => unit)), 4096), []);
  // Noise over 160 byte values: log2(160) = 7.3 bits a byte, which Huffman coding shrinks by 8%.
  const narrow = Buffer.from(noise(64 * 1024, 'e').map((b) => b % 160));
  t.deepEqual(incompressibleRuns(narrow, 4096), []);
});

async function gzipParallel(input: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const c = createCompressor({ compression: 'gzip', level: 6, concurrency: 2 });
  Readable.from([input]).pipe(c);
  for await (const chunk of c) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

test('storing never costs size: a mixed stream compresses within 0.5% of one zlib stream', async (t) => {
  const pieces: Buffer[] = [];
  for (let i = 0; i < 120; i++) {
    const size = 3000 + ((i * 7919) % 60_000);
    const kind = i % 5;
    pieces.push(kind === 0 ? noise(size, `p${i}`) : kind === 1 ? Buffer.alloc(size) : kind === 2 ? Buffer.concat([noise(1024, `r${i}`), noise(1024, `r${i}`)]).subarray(0, size) : text(size, i));
  }
  const input = Buffer.concat(pieces);
  const ours = await gzipParallel(input);
  const zlib = gzipSync(input, { level: 6, finishFlush: constants.Z_FINISH });
  t.true(ours.length <= zlib.length * 1.005, `${ours.length} vs zlib ${zlib.length}`);
});
