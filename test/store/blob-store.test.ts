import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobStore } from '../../src/store/blob-store.ts';
import { sha256 } from '../../src/image/digest.ts';
import { defaultCacheDir } from '../../src/index.ts';
import { tempDir } from '../helpers/cli.ts';

test('blobs are stored under blobs/sha256/<hex> and read back verified', async (t) => {
  const root = await tempDir(t);
  const store = await BlobStore.open(root);
  const info = await store.putBytes(Buffer.from('hello'));
  t.is(info.digest, sha256('hello'));
  t.is(await fs.readFile(path.join(root, 'blobs/sha256', info.digest.slice(7)), 'utf8'), 'hello');
  t.is((await store.readBytes(info.digest)).toString(), 'hello');
  t.deepEqual(await fs.readdir(path.join(root, 'tmp')), [], 'no temporary file is left behind');
});

test('a write whose content does not match the expected digest stores nothing', async (t) => {
  const root = await tempDir(t);
  const store = await BlobStore.open(root);
  const err = await t.throwsAsync(store.putStream(Readable.from([Buffer.from('evil')]), sha256('good')));
  t.is((err as { code?: string }).code, 'DIGEST_MISMATCH');
  t.false(await store.has(sha256('evil')));
  t.false(await store.has(sha256('good')));
  t.deepEqual(await fs.readdir(path.join(root, 'tmp')), []);
});

test('a corrupted blob fails on read, both whole and streamed', async (t) => {
  const root = await tempDir(t);
  const store = await BlobStore.open(root);
  const { digest } = await store.putBytes(Buffer.from('original'));
  await fs.writeFile(store.path(digest), 'tampered');
  await t.throwsAsync(store.readBytes(digest), { code: 'DIGEST_MISMATCH' } as never);
  const err = await t.throwsAsync(async () => {
    for await (const _ of store.openRead(digest)) void _;
  });
  t.regex(err!.message, /does not match its digest/);
});

test('temporary files of dead writers are removed when a store opens; live ones are kept', async (t) => {
  const root = await tempDir(t);
  await BlobStore.open(root);
  const dead = path.join(root, 'tmp', '999999999-deadbeef.part');
  const live = path.join(root, 'tmp', `${process.pid}-cafe.part`);
  await fs.writeFile(dead, 'partial');
  await fs.writeFile(live, 'in progress');
  await BlobStore.open(root);
  t.false(await fs.stat(dead).then(() => true, () => false));
  t.true(await fs.stat(live).then(() => true, () => false));
});

test('an aborted writer leaves nothing', async (t) => {
  const root = await tempDir(t);
  const store = await BlobStore.open(root);
  const w = await store.createWriter();
  w.stream.write(Buffer.from('half'));
  await w.abort();
  t.deepEqual(await fs.readdir(path.join(root, 'tmp')), []);
  t.deepEqual(await fs.readdir(path.join(root, 'blobs/sha256')), []);
});

test('the cache folder defaults to $LADING_CACHE_DIR, then $XDG_CACHE_HOME/lading, then ~/.cache/lading', (t) => {
  t.is(defaultCacheDir({ LADING_CACHE_DIR: '/x/y' }), '/x/y');
  t.is(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/lading');
  t.regex(defaultCacheDir({}), /\.cache\/lading$/);
});

test('copyOut copies only blobs this store wrote; any other blob must be read (and verified) instead', async (t) => {
  const root = await tempDir(t);
  const out = await tempDir(t);
  const writer = await BlobStore.open(root);
  const info = await writer.putBytes(Buffer.from('layer bytes'));
  t.true(await writer.copyOut(info.digest, path.join(out, 'a')));
  t.is(await fs.readFile(path.join(out, 'a'), 'utf8'), 'layer bytes');
  // Another process (a second store object) did not hash these bytes: it will not vouch for them,
  // and reading them shows the corruption.
  await fs.writeFile(writer.path(info.digest), 'tampered!!!');
  const other = await BlobStore.open(root);
  t.false(await other.copyOut(info.digest, path.join(out, 'b')));
  await t.throwsAsync(other.readBytes(info.digest), { message: /corrupt/ });
  // A removed blob is not vouched for either.
  await writer.remove(info.digest);
  t.false(await writer.copyOut(info.digest, path.join(out, 'c')));
});
