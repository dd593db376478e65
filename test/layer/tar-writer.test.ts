import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { createTarStream, tarHeaderFor, USTAR_MAX_SIZE } from '../../src/layer/tar-writer.ts';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../../src/layer/entry.ts';

const longName = `deep/${'d'.repeat(60)}/${'n'.repeat(134)}`; // 200 characters
const longTarget = `/${'t'.repeat(149)}`; // 150 characters

function bytes(text: string): LayerEntry['source'] {
  return { kind: 'bytes', data: Buffer.from(text) };
}

function sampleEntries(): LayerEntry[] {
  return [
    { path: 'deep', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { path: `deep/${'d'.repeat(60)}`, type: 'directory', mode: 0o750, uid: 0, gid: 0 },
    { path: longName, type: 'file', mode: 0o640, uid: 0, gid: 0, size: 4, source: bytes('long') },
    { path: 'bin', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { path: 'bin/tool', type: 'file', mode: 0o4755, uid: 0, gid: 0, size: 5, source: bytes('tool\n') },
    { path: 'bin/link-long', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: longTarget },
    { path: 'bin/rel', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: 'tool' },
    { path: 'data', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
    { path: 'data/a', type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 6, linkKey: 'inode-1', source: bytes('shared') },
    { path: 'data/b', type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 6, linkKey: 'inode-1', source: bytes('shared') },
    { path: 'data/empty', type: 'file', mode: 0, uid: 0, gid: 0, size: 0 },
    { ...whiteoutEntry('data/gone') },
    { ...opaqueEntry('data') },
  ];
}

async function tarBytes(entries: LayerEntry[], epoch = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of createTarStream(entries, { epoch })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('the same entries in any order give the same bytes', async (t) => {
  const a = await tarBytes(sampleEntries());
  const b = await tarBytes(sampleEntries().reverse());
  t.is(createHash('sha256').update(a).digest('hex'), createHash('sha256').update(b).digest('hex'));
});

test('GNU tar lists and extracts what we wrote: names, modes, owners, links, PAX records', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-tar-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'layer.tar');
  const data = await tarBytes(sampleEntries());
  await fs.writeFile(file, data);

  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8' }).trim().split('\n');
  const byName = new Map(listing.map((l) => [l.split(/\s+/).slice(5).join(' ').split(' -> ')[0]!.split(' link to ')[0]!, l]));
  t.regex(byName.get(longName) ?? '', /^-rw-r----- 0\/0\s+4 1970-01-01 00:00/);
  t.regex(byName.get('bin/tool') ?? '', /^-rwsr-xr-x 0\/0/);
  t.true((byName.get('bin/link-long') ?? '').endsWith(`-> ${longTarget}`));
  t.regex(byName.get('data/b') ?? '', /^hrw-r--r-- 1000\/1000\s+0 .* data\/b link to data\/a$/);
  t.regex(byName.get('data/empty') ?? '', /^---------- 0\/0\s+0/);
  t.regex(byName.get('data/') ?? '', /^drwx------ 1000\/1000/);
  // Parents before children, opaque marker first in its directory.
  const names = listing.map((l) => l.split(/\s+/)[5]);
  t.true(names.indexOf('data/') < names.indexOf('data/.wh..wh..opq'));
  t.is(names[names.indexOf('data/') + 1], 'data/.wh..wh..opq');
  // Long names and link targets travel in PAX extended headers.
  t.true(data.includes(Buffer.from(` path=${longName}\n`)));
  t.true(data.includes(Buffer.from(` linkpath=${longTarget}\n`)));

  const out = path.join(dir, 'x');
  await fs.mkdir(out);
  execFileSync('tar', ['--numeric-owner', '-xf', file, '-C', out]);
  t.is(await fs.readFile(path.join(out, longName), 'utf8'), 'long');
  t.is(await fs.readlink(path.join(out, 'bin/link-long')), longTarget);
  const a = await fs.stat(path.join(out, 'data/a'));
  const b = await fs.stat(path.join(out, 'data/b'));
  t.is(a.ino, b.ino, 'hard links share one inode after extraction');
  t.is((await fs.stat(path.join(out, 'bin/tool'))).mode & 0o7777, 0o4755);
});

test('mtimes are clamped to the epoch and no host names are written', async (t) => {
  const entries: LayerEntry[] = [
    { path: 'old', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 100, source: bytes('o') },
    { path: 'new', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 2_000_000_000, source: bytes('n') },
  ];
  const seen = new Map<string, tar.Header>();
  const extract = tar.extract();
  extract.on('entry', (h, s, next) => {
    seen.set(h.name, h);
    s.on('end', next);
    s.resume();
  });
  extract.end(await tarBytes(entries, 1_000));
  await new Promise<void>((r) => extract.on('finish', () => r()));
  t.is(seen.get('old')!.mtime.getTime(), 100_000);
  t.is(seen.get('new')!.mtime.getTime(), 1_000_000);
  t.is(seen.get('old')!.uname, '');
  t.is(seen.get('old')!.gname, '');
});

test('a header for a file over 8 GiB carries a PAX size record', async (t) => {
  const size = 9 * 1024 ** 3;
  t.true(size > USTAR_MAX_SIZE);
  const header = tarHeaderFor({ path: 'huge.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, size }, 0);
  t.deepEqual(header.pax, { size: String(size) });
  // Encode the header alone (no body) and read the PAX record back from the bytes.
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  pack.on('error', () => undefined);
  // The headers go out when the body starts; a few bytes are enough to see them.
  pack.entry(header).write(Buffer.alloc(16));
  await new Promise((r) => setTimeout(r, 20));
  pack.destroy();
  const raw = Buffer.concat(chunks);
  t.true(raw.includes(Buffer.from(` size=${size}\n`)));
  t.is(raw[156], 'x'.charCodeAt(0), 'the first header is a PAX extended header');
});

test('uid and gid above the ustar range get PAX records', (t) => {
  const header = tarHeaderFor({ path: 'f', type: 'file', mode: 0o644, uid: 3_000_000, gid: 4_000_000, size: 0 }, 0);
  t.deepEqual(header.pax, { uid: '3000000', gid: '4000000' });
});

test('a file that changes size while it is written fails the layer with a clear error', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-tar-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'f');
  await fs.writeFile(file, 'grown beyond what was declared');
  const err = await t.throwsAsync(tarBytes([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, source: { kind: 'path', path: file } }]));
  t.regex(err!.message, /changed while it was being read/);
});
