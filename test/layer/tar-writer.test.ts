import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { createTarStream, tarHeaderFor, USTAR_MAX_SIZE } from '../../src/layer/tar-writer.ts';
import { encodeTarHeader } from '../../src/layer/tar-header.ts';
import { opaqueEntry, sortEntries, whiteoutEntry, type LayerEntry } from '../../src/layer/entry.ts';

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
  // Encode the header alone and read the PAX record back from the bytes.
  const raw = encodeTarHeader(header);
  t.true(raw.includes(Buffer.from(` size=${size}\n`)));
  t.is(raw[156], 'x'.charCodeAt(0), 'the first header is a PAX extended header');
  t.is(raw.length % 512, 0);
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
  // Shrunk: fewer bytes than declared, read whole (small) or streamed (over 1 MiB).
  const small = await t.throwsAsync(tarBytes([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 100, source: { kind: 'path', path: file } }]));
  t.regex(small!.message, new RegExp(`${file} changed while it was being read \\(expected 100 bytes\\)`));
  const big = path.join(dir, 'big');
  await fs.writeFile(big, Buffer.alloc(2 * 1024 * 1024, 1));
  for (const size of [3 * 1024 * 1024, 2 * 1024 * 1024 - 1]) {
    const e = await t.throwsAsync(tarBytes([{ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, size, source: { kind: 'path', path: big } }]));
    t.regex(e!.message, new RegExp(`${big} changed while it was being read \\(expected ${size} bytes\\)`), `declared ${size}`);
  }
  // A stream source (a file from another image) that delivers more or less than its header says.
  for (const [size, data] of [[5, 'too long by far'], [50, 'short']] as const) {
    const e = await t.throwsAsync(tarBytes([{ path: 's', type: 'file', mode: 0o644, uid: 0, gid: 0, size, source: { kind: 'stream', open: () => Readable.from([Buffer.from(data)]) } }]));
    t.regex(e!.message, /s changed while it was being read/);
  }
  // Unreadable: the error names the file and says what to do.
  const missing = await t.throwsAsync(tarBytes([{ path: 'm', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, source: { kind: 'path', path: path.join(dir, 'missing') } }]));
  t.regex(missing!.message, /missing/);
});

/**
 * The bytes tar-stream 3's pack wrote for the same entries (how every layer was written before our
 * own writer): the reference our writer must match byte for byte, so no layer digest moves.
 */
async function tarStreamBytes(entries: LayerEntry[], epoch: number): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  const typeBits: Record<string, number> = { file: 0o100000, directory: 0o040000, symlink: 0o120000, link: 0o100000, 'character-device': 0o020000, 'block-device': 0o060000, fifo: 0o010000 };
  const firstPathOfInode = new Map<string, string>();
  for (const entry of sortEntries(entries)) {
    if (entry.path === '') continue;
    let target: string | undefined;
    if (entry.type === 'file' && entry.linkKey !== undefined) {
      target = firstPathOfInode.get(entry.linkKey);
      if (target === undefined) firstPathOfInode.set(entry.linkKey, entry.path);
    }
    const h = tarHeaderFor(entry, epoch, target);
    const header: Partial<tar.Header> & { name: string } = { ...h, mode: h.mode | (typeBits[h.type] ?? 0o100000), mtime: new Date(h.mtime * 1000), uname: '', gname: '' };
    let body: Buffer | undefined;
    if (h.type === 'file' && h.size > 0) {
      const source = entry.source!;
      body = source.kind === 'bytes' ? Buffer.from(source.data) : source.kind === 'path' ? await fs.readFile(source.path) : Buffer.alloc(0);
    } else if (h.type === 'file') body = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('byte for byte what tar-stream wrote: long, unicode and split names, PAX records, links, devices, big and small bodies', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-tar-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const onDisk = async (name: string, size: number): Promise<LayerEntry['source']> => {
    const file = path.join(dir, name);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) data.write(`${name}:${i}`, i);
    await fs.writeFile(file, data);
    return { kind: 'path', path: file };
  };
  const entries: LayerEntry[] = [
    ...sampleEntries(),
    { path: `${'p'.repeat(100)}`, type: 'file', mode: 0o600, uid: 1, gid: 2, size: 512, source: await onDisk('exact512', 512) },
    { path: `${'q'.repeat(101)}`, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 1, source: bytes('q') },
    { path: `${'a'.repeat(150)}/${'b'.repeat(99)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, source: bytes('abc') },
    { path: `${'a'.repeat(155)}/${'c'.repeat(100)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, source: bytes('xyz') },
    { path: `${'a'.repeat(156)}/c`, type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { path: 'ünïcödé/名前.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 2, source: bytes('ok') },
    { path: 'link-unicode', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: 'ziel/ü' },
    { path: 'big-ids', type: 'file', mode: 0o644, uid: 5_000_000, gid: 7, size: 0 },
    { path: 'xattrs', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: { 'security.capability': 'cap', 'user.note': 'hi' } },
    { path: 'dev/null', type: 'character-device', mode: 0o666, uid: 0, gid: 0, devmajor: 1, devminor: 3 },
    { path: 'dev/sda', type: 'block-device', mode: 0o660, uid: 0, gid: 6, devmajor: 8, devminor: 0 },
    { path: 'dev/fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0 },
    { path: 'dev', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 5_000 },
    { path: 'files/one-mib', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1024 * 1024, source: await onDisk('one-mib', 1024 * 1024) },
    { path: 'files/just-under', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1024 * 1024 - 1, source: await onDisk('just-under', 1024 * 1024 - 1) },
    { path: 'files/three-mib', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3 * 1024 * 1024 + 7, source: await onDisk('three-mib', 3 * 1024 * 1024 + 7) },
    { path: 'files/bytes-big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 2 * 1024 * 1024 + 3, source: { kind: 'bytes', data: Buffer.alloc(2 * 1024 * 1024 + 3, 9) } },
    ...Array.from({ length: 300 }, (_, i): LayerEntry => ({ path: `many/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: (i * 997) % 9000, mtime: i, source: bytes('z'.repeat((i * 997) % 9000)) })),
  ];
  for (const epoch of [0, 1_700_000_000]) {
    const ours = await tarBytes(entries, epoch);
    const theirs = await tarStreamBytes(entries, epoch);
    t.is(ours.length, theirs.length, `epoch ${epoch}: length`);
    let first = 0;
    while (first < ours.length && ours[first] === theirs[first]) first++;
    t.true(ours.equals(theirs), `epoch ${epoch}: bytes differ from ${first}: ${JSON.stringify(ours.subarray(first - first % 512, first - first % 512 + 512).toString('latin1'))} vs ${JSON.stringify(theirs.subarray(first - first % 512, first - first % 512 + 512).toString('latin1'))}`);
  }
});
