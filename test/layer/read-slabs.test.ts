import test from 'ava';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readSmallFile, releaseChunk, SMALL_FILE_LIMIT } from '../../src/layer/read-slabs.ts';
import { writeLayer } from '../../src/layer/write-layer.ts';
import { createTarStream } from '../../src/layer/tar-writer.ts';
import type { LayerEntry } from '../../src/layer/entry.ts';
import { BlobStore } from '../../src/store/blob-store.ts';

async function tempFolder(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-slabs-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test.serial('a file is read whole, and one byte more when it has grown since it was listed', async (t) => {
  const dir = await tempFolder(t);
  await fs.writeFile(path.join(dir, 'f'), 'hello world');
  const whole = readSmallFile(path.join(dir, 'f'), 11).bytes;
  const grown = readSmallFile(path.join(dir, 'f'), 5).bytes;
  const shrunk = readSmallFile(path.join(dir, 'f'), 20).bytes;
  t.is(whole.toString(), 'hello world');
  t.is(grown.length, 6, 'grown: one byte past the expected size');
  t.is(shrunk.length, 11, 'shrunk: what is there');
  const st = await fs.stat(path.join(dir, 'f'));
  const again = readSmallFile(path.join(dir, 'f'), 11);
  t.is(again.after.ino, st.ino, 'the stat of the file read, after the read');
  releaseChunk(again.bytes);
  for (const chunk of [whole, grown, shrunk]) releaseChunk(chunk);
  t.throws(() => readSmallFile(path.join(dir, 'missing'), 3), { code: 'ENOENT' });
  t.is(SMALL_FILE_LIMIT, 1024 * 1024 - 1);
});

test.serial('slab memory is reused only after every chunk cut from it has been released', async (t) => {
  const dir = await tempFolder(t);
  const big = path.join(dir, 'big');
  await fs.writeFile(big, Buffer.alloc(600 * 1024, 1));
  // Two 600 KiB reads cannot share a 1 MiB slab: the second retires the first.
  const first = readSmallFile(big, 600 * 1024).bytes;
  await fs.writeFile(big, Buffer.alloc(600 * 1024, 2));
  const second = readSmallFile(big, 600 * 1024).bytes;
  t.true(first.buffer !== second.buffer);
  // The first slab is retired but still held: a third read must not land in it.
  await fs.writeFile(big, Buffer.alloc(600 * 1024, 3));
  const third = readSmallFile(big, 600 * 1024).bytes;
  t.true(third.buffer !== first.buffer);
  t.is(first[0], 1, 'unreleased bytes are never overwritten');
  // Released (in two pieces, as a stream might cut it), the first slab is taken by the next new slab.
  releaseChunk(first.subarray(0, 1000));
  releaseChunk(first.subarray(1000));
  await fs.writeFile(big, Buffer.alloc(600 * 1024, 4));
  const fourth = readSmallFile(big, 600 * 1024).bytes;
  t.true(fourth.buffer === first.buffer, 'the released slab is reused');
  t.is(second[0], 2);
  t.is(third[0], 3);
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
