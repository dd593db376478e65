import test from 'ava';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { createCompressor, GZIP_BLOCK_SIZE } from '../../src/layer/compress.ts';

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
