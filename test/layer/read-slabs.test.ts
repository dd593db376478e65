import test from 'ava';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { releaseChunk, SlabWriter, SMALL_FILE_LIMIT } from '../../src/layer/read-slabs.ts';
import { writeLayer } from '../../src/layer/write-layer.ts';
import { createTarStream } from '../../src/layer/tar-writer.ts';
import type { LayerEntry } from '../../src/layer/entry.ts';
import { BlobStore } from '../../src/store/blob-store.ts';

async function tempFolder(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-slabs-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('a file is read in place: whole, one byte more when it has grown, less when it shrank; kept only when asked', async (t) => {
  const dir = await tempFolder(t);
  const file = path.join(dir, 'f');
  await fs.writeFile(file, 'hello world');
  const out = new SlabWriter();
  const grown = out.readFile(file, 5);
  t.is(grown.bytes.length, 6, 'grown: one byte past the expected size');
  const shrunk = out.readFile(file, 20);
  t.is(shrunk.bytes.length, 11, 'shrunk: what is there');
  const whole = out.readFile(file, 11);
  t.is(whole.bytes.toString(), 'hello world');
  t.is(whole.after.ino, (await fs.stat(file)).ino, 'the stat of the file read, after the read');
  whole.keep();
  t.throws(() => out.readFile(path.join(dir, 'missing'), 3), { code: 'ENOENT' });
  // Only the kept read is in the stream.
  out.write(Buffer.from('!'));
  const pieces = out.take(true);
  t.is(Buffer.concat(pieces).toString(), 'hello world!');
  for (const piece of pieces) releaseChunk(piece);
  out.close();
  t.is(SMALL_FILE_LIMIT, 1024 * 1024 - 1);
});

test.serial('slab memory is reused only after every piece cut from it has been released', (t) => {
  const out = new SlabWriter();
  // 600 KiB pieces: two cannot share a 1 MiB slab, so each write retires the slab before it.
  out.write(Buffer.alloc(600 * 1024, 1));
  const [first] = out.take(true);
  out.write(Buffer.alloc(600 * 1024, 2));
  const [second] = out.take(true);
  t.true(first!.buffer !== second!.buffer);
  out.write(Buffer.alloc(600 * 1024, 3));
  const [third] = out.take(true);
  t.true(third!.buffer !== first!.buffer, 'the first slab is retired but not released: never reused');
  t.is(first![0], 1, 'unreleased bytes are never overwritten');
  // Released in two parts (as a stream might cut it), the first slab is the next one taken.
  releaseChunk(first!.subarray(0, 1000));
  releaseChunk(first!.subarray(1000));
  out.write(Buffer.alloc(600 * 1024, 4));
  const [fourth] = out.take(true);
  t.true(fourth!.buffer === first!.buffer, 'the released slab is reused');
  t.is(second![0], 2);
  t.is(third![0], 3);
  // Small writes gather into pieces of at least 256 KiB.
  for (let i = 0; i < 100; i++) out.write(Buffer.alloc(1000, i));
  t.deepEqual(out.take(), [], 'not yet a piece');
  for (let i = 0; i < 200; i++) out.write(Buffer.alloc(1000, i));
  t.is(out.take().reduce((n, p) => n + p.length, 0), 300_000);
  out.close();
});

test.serial('concurrent layers of many small files come out byte for byte while read slabs and compressed buffers are recycled', async (t) => {
  const dir = await tempFolder(t);
  const layers: LayerEntry[][] = [];
  for (let l = 0; l < 3; l++) {
    const entries: LayerEntry[] = [];
    for (let i = 0; i < 400; i++) {
      const name = `l${l}-f${String(i).padStart(4, '0')}`;
      const data = createHash('sha256').update(name).digest().toString('hex').repeat(1 + ((i * 37) % 300));
      await fs.writeFile(path.join(dir, name), data);
      entries.push({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, source: { kind: 'path', path: path.join(dir, name) } });
    }
    layers.push(entries);
  }
  // The tar bytes each layer must hold, read through plain streams.
  const expected = await Promise.all(
    layers.map(async (entries) => {
      const out: Buffer[] = [];
      const copies = entries.map((e) => ({ ...e, source: { kind: 'bytes' as const, data: Buffer.from('') } }));
      for (const [i, e] of copies.entries()) e.source = { kind: 'bytes', data: await fs.readFile((entries[i]!.source as { path: string }).path) };
      for await (const c of createTarStream(copies)) out.push(c as Buffer);
      return Buffer.concat(out);
    }),
  );
  // A real store: its writer hands each compressed chunk back for reuse once it is in the file.
  const store = await BlobStore.open(path.join(dir, 'store'));
  for (let round = 0; round < 2; round++) {
    const written = await Promise.all(layers.map((entries) => writeLayer(entries, store, { compression: 'gzip', concurrency: 2 })));
    for (const [i, layer] of written.entries()) t.true(gunzipSync(await store.readBytes(layer.digest)).equals(expected[i]!), `round ${round}, layer ${i}`);
    if (round === 0) for (const layer of written) await store.remove(layer.digest);
  }
});
