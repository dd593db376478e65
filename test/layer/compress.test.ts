import test from 'ava';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { constants, crc32, deflateRawSync, gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { createCompressor, GZIP_BLOCK_SIZE, ZSTD_BLOCK_SIZE } from '../../src/layer/compress.ts';
import { compressionPool, crc32Combine, recycleCompressedChunk } from '../../src/layer/compression-pool.ts';

async function compress(chunks: Buffer[], concurrency: number, level = 6): Promise<Buffer> {
  const out: Buffer[] = [];
  const c = createCompressor({ compression: 'gzip', level, concurrency });
  Readable.from(chunks, { objectMode: false }).pipe(c);
  for await (const chunk of c) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

function sample(size: number): Buffer {
  // Half text, half random: compressible but not trivially.
  const text = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit\n'.repeat(Math.ceil(size / 112)));
  const half = Math.floor(size / 2);
  return Buffer.concat([text.subarray(0, half), randomBytes(size - half)]);
}

test('parallel gzip output is valid gzip and round-trips', async (t) => {
  const input = sample(3 * GZIP_BLOCK_SIZE + 12345);
  const gz = await compress([input], 2);
  t.true(gunzipSync(gz).equals(input));
});

test('parallel gzip bytes do not depend on concurrency or on how the input is chunked', async (t) => {
  const input = sample(5 * GZIP_BLOCK_SIZE + 777);
  const one = await compress([input], 1);
  const four = await compress([input], 4);
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += 65_521) pieces.push(input.subarray(i, i + 65_521));
  const chunked = await compress(pieces, 2);
  const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  t.is(digest(one), digest(four));
  t.is(digest(one), digest(chunked));
});

test('blocks recycled between workers and streams never mix: concurrent layers round-trip, twice over', async (t) => {
  const inputs = [0, 1, 2, 3].map((i) => sample((2 + i) * GZIP_BLOCK_SIZE + 999 * i));
  for (let round = 0; round < 2; round++) {
    const outs = await Promise.all(inputs.map((input, i) => compress([input.subarray(0, 70_000), input.subarray(70_000)], 1 + i)));
    outs.forEach((gz, i) => t.true(gunzipSync(gz).equals(inputs[i]!), `round ${round}, layer ${i}`));
  }
});

test('empty input and exact block multiples compress correctly', async (t) => {
  t.deepEqual(gunzipSync(await compress([], 2)), Buffer.alloc(0));
  const exact = sample(2 * GZIP_BLOCK_SIZE);
  t.true(gunzipSync(await compress([exact], 2)).equals(exact));
});

test('the gzip header carries no time, name or host OS', async (t) => {
  const gz = await compress([Buffer.from('x')], 1);
  t.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
});

test('levels outside 1-9 are refused', (t) => {
  t.throws(() => createCompressor({ compression: 'gzip', level: 0 }), { message: /1 to 9/ });
});

function gzipOf(parts: Buffer[], input: Buffer): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(input) >>> 0, 0);
  trailer.writeUInt32LE(input.length, 4);
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]), ...parts, trailer]);
}

/** Stored deflate blocks of at most 65,535 bytes, the last one final when `final`. */
function stored(bytes: Buffer, final: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 65_535) {
    const n = Math.min(65_535, bytes.length - at);
    const header = Buffer.from([final && at + n === bytes.length ? 1 : 0, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]);
    out.push(header, bytes.subarray(at, at + n));
  }
  return out;
}

function text(size: number): Buffer {
  return Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit\n'.repeat(Math.ceil(size / 56))).subarray(0, size);
}

test('the output is exactly the documented composition: 1 MiB raw deflate blocks with 32 KiB dictionaries in one gzip member', async (t) => {
  const input = text(2 * GZIP_BLOCK_SIZE + 5000);
  const blocks = [input.subarray(0, GZIP_BLOCK_SIZE), input.subarray(GZIP_BLOCK_SIZE, 2 * GZIP_BLOCK_SIZE), input.subarray(2 * GZIP_BLOCK_SIZE)];
  const parts = blocks.map((b, i) =>
    deflateRawSync(b, {
      level: 6,
      finishFlush: i === blocks.length - 1 ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      ...(i > 0 ? { dictionary: blocks[i - 1]!.subarray(blocks[i - 1]!.length - 32 * 1024) } : {}),
    }),
  );
  t.true((await compress([input], 2)).equals(gzipOf(parts, input)));
});

test('incompressible stretches are stored, not deflated: whole blocks, runs inside a block, and a final stored block', async (t) => {
  // text 100 KiB | random 200 KiB | text to the end of block one; block two all random; block three text.
  const random = randomBytes(200 * 1024 + GZIP_BLOCK_SIZE);
  const one = Buffer.concat([text(100 * 1024), random.subarray(0, 200 * 1024), text(GZIP_BLOCK_SIZE - 300 * 1024)]);
  const two = random.subarray(200 * 1024);
  const three = text(5000);
  const input = Buffer.concat([one, two, three]);
  const sync = { level: 6, finishFlush: constants.Z_SYNC_FLUSH };
  const parts = [
    deflateRawSync(one.subarray(0, 100 * 1024), sync),
    ...stored(one.subarray(100 * 1024, 300 * 1024), false),
    deflateRawSync(one.subarray(300 * 1024), { ...sync, dictionary: one.subarray(300 * 1024 - 32 * 1024, 300 * 1024) }),
    ...stored(two, false),
    deflateRawSync(three, { level: 6, finishFlush: constants.Z_FINISH, dictionary: two.subarray(two.length - 32 * 1024) }),
  ];
  const gz = await compress([input], 2);
  t.true(gz.equals(gzipOf(parts, input)));
  t.true(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 1 << 26 }).equals(input), 'gzip(1) reads it back');

  // Ending on a stored run: its last stored block is the final one.
  const tail = Buffer.concat([text(20 * 1024), random.subarray(0, 64 * 1024)]);
  const expected = gzipOf([deflateRawSync(tail.subarray(0, 20 * 1024), sync), ...stored(tail.subarray(20 * 1024), true)], tail);
  t.true((await compress([tail], 1)).equals(expected));
  t.true(gunzipSync(expected).equals(tail));
});

test('CRC-32 of joined blocks combines like zlib', (t) => {
  const a = randomBytes(1000);
  const b = randomBytes(777);
  t.is(crc32Combine(crc32(a), crc32(b), b.length), crc32(Buffer.concat([a, b])) >>> 0);
  t.is(crc32Combine(crc32(a), crc32(Buffer.alloc(0)), 0), crc32(a) >>> 0);
});

test('zstd: blocks become independent frames; the zstd tool reads the stream; output independent of concurrency', async (t) => {
  const input = sample(2 * ZSTD_BLOCK_SIZE + 1234);
  const run = async (concurrency: number): Promise<Buffer> => {
    const out: Buffer[] = [];
    const c = createCompressor({ compression: 'zstd', level: 3, concurrency });
    Readable.from([input], { objectMode: false }).pipe(c);
    for await (const chunk of c) out.push(chunk as Buffer);
    return Buffer.concat(out);
  };
  const one = await run(1);
  t.true(one.equals(await run(3)));
  const decoded = execFileSync('zstd', ['-d', '-c'], { input: one, maxBuffer: 64 * 1024 * 1024 });
  t.true(decoded.equals(input));
  t.deepEqual([...one.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
});

test('a compressed buffer is recycled only whole: a piece of it leaves it alone', async (t) => {
  const input = sample(GZIP_BLOCK_SIZE + 100);
  const c = createCompressor({ compression: 'gzip', level: 1, concurrency: 2 });
  // 'data' events, as a pipe delivers them: one result per chunk (async iteration would join them).
  const chunks: Buffer[] = [];
  c.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve, reject) => Readable.from([input]).pipe(c).on('end', resolve).on('error', reject));
  const before = Buffer.concat(chunks);
  const block = chunks.find((x) => x.length > 1000 && x.byteOffset === 0)!;
  const pool = compressionPool();
  // The next block submitted in the same tick takes a spare result buffer if there is one.
  const submitOne = (): Promise<unknown> => pool.deflate(pool.block(GZIP_BLOCK_SIZE).fill(7), GZIP_BLOCK_SIZE, undefined, 1, true);
  recycleCompressedChunk(block.subarray(0, 10));
  recycleCompressedChunk(block.subarray(10));
  const first = submitOne();
  t.true(block.length > 1000, 'pieces are not taken: the memory is still here');
  t.true(Buffer.concat(chunks).equals(before));
  recycleCompressedChunk(block);
  const second = submitOne();
  t.is(block.length, 0, 'whole, it moved to a worker to carry the next result');
  await Promise.all([first, second]);
});
