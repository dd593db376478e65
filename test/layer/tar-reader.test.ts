import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { decompressLayer, detectCompression } from '../../src/layer/decompress.ts';
import type { LayerEntry } from '../../src/layer/entry.ts';
import { readTar, tarEntryPath, type TarEntry } from '../../src/layer/tar-reader.ts';
import { createTarStream } from '../../src/layer/tar-writer.ts';
import { dir, file, hardlink, rawTar, symlink } from '../run/helpers/raw-tar.ts';

async function collect(input: Readable): Promise<{ entry: TarEntry; digest?: string }[]> {
  const out: { entry: TarEntry; digest?: string }[] = [];
  await readTar(input, async (entry, body) => {
    if (entry.type !== 'file') {
      out.push({ entry });
      return;
    }
    const hash = createHash('sha256');
    for await (const chunk of body) hash.update(chunk as Buffer);
    out.push({ entry, digest: hash.digest('hex') });
  });
  return out;
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

test('reads back what the deterministic writer wrote: types, modes, owners, links, PAX ids', async (t) => {
  const data = Buffer.from('hello\n');
  const entries: LayerEntry[] = [
    { path: 'etc', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    { path: 'etc/motd', type: 'file', mode: 0o4755, uid: 3_000_000, gid: 42, size: data.length, source: { kind: 'bytes', data }, linkKey: 'x' },
    { path: 'etc/motd2', type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, source: { kind: 'bytes', data }, linkKey: 'x' },
    { path: 'etc/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: '../etc/motd' },
    { path: 'etc/caps', type: 'file', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: { 'security.capability': 'AQID' } },
    { path: 'dev-null', type: 'character-device', mode: 0o666, uid: 0, gid: 0, devmajor: 1, devminor: 3 },
  ];
  const got = await collect(createTarStream(entries));
  t.deepEqual(
    got.map((g) => [g.entry.path, g.entry.type]),
    [
      ['dev-null', 'character-device'],
      ['etc', 'directory'],
      ['etc/caps', 'file'],
      ['etc/link', 'symlink'],
      ['etc/motd', 'file'],
      ['etc/motd2', 'hardlink'],
    ],
  );
  const motd = got.find((g) => g.entry.path === 'etc/motd')!;
  t.is(motd.entry.mode, 0o4755);
  t.is(motd.entry.uid, 3_000_000, 'ids above the ustar limit come from PAX records');
  t.is(motd.entry.gid, 42);
  t.is(motd.digest, sha(data));
  t.is(got.find((g) => g.entry.path === 'etc/motd2')!.entry.linkname, 'etc/motd');
  t.is(got.find((g) => g.entry.path === 'etc/link')!.entry.linkname, '../etc/motd', 'symlink targets are kept verbatim');
  t.deepEqual(got.find((g) => g.entry.path === 'etc/caps')!.entry.xattrs, { 'security.capability': 'AQID' });
  const dev = got.find((g) => g.entry.path === 'dev-null')!.entry;
  t.deepEqual([dev.devmajor, dev.devminor], [1, 3]);
});

test('names: leading slashes and ./ are dropped, climbing out with .. is refused', (t) => {
  t.is(tarEntryPath('/etc/passwd'), 'etc/passwd');
  t.is(tarEntryPath('./usr//bin/./sh'), 'usr/bin/sh');
  t.is(tarEntryPath('a/b/../c'), 'a/c');
  t.is(tarEntryPath('./'), '');
  for (const bad of ['../x', 'a/../../x', '/../etc/passwd', '..']) {
    t.throws(() => tarEntryPath(bad), { code: 'TAR' } as never, bad);
  }
});

test('hostile archives are refused with TAR errors: .. names, hard links out of the root', async (t) => {
  for (const entries of [
    [file('../escape', 'x')],
    [dir('a'), file('a/../../escape', 'x')],
    [file('ok', 'x'), hardlink('evil', '../../etc/passwd')],
  ]) {
    const err = await t.throwsAsync(collect(Readable.from([rawTar(entries)])));
    t.is((err as { code?: string }).code, 'TAR', err?.message);
  }
});

test('absolute names and symlinks pass the reader as data; it is the applier that scopes them', async (t) => {
  const got = await collect(Readable.from([rawTar([symlink('etc', '/'), file('/etc/x', 'y')])]));
  t.deepEqual(
    got.map((g) => [g.entry.path, g.entry.linkname ?? '']),
    [
      ['etc', '/'],
      ['etc/x', ''],
    ],
  );
});

test('duplicates are reported in archive order (the last one wins when applied)', async (t) => {
  const got = await collect(Readable.from([rawTar([file('a', 'one'), file('a', 'two')])]));
  t.deepEqual(
    got.map((g) => g.digest),
    [sha('one'), sha('two')],
  );
});

test('a handler that reads part of a body does not derail the next entry', async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const seen: string[] = [];
  await readTar(Readable.from([rawTar([file('big', big), file('small', 'tail')])]), async (entry, body) => {
    seen.push(entry.path);
    if (entry.path === 'big') {
      for await (const _ of body) break;
    } else {
      let text = '';
      for await (const chunk of body) text += String(chunk);
      t.is(text, 'tail');
    }
  });
  t.deepEqual(seen, ['big', 'small']);
});

test('a declared size far beyond the data ends in a TAR error, without allocating it', async (t) => {
  const before = process.memoryUsage().rss;
  const lying = rawTar([{ name: 'huge', type: '0', declaredSize: 1, pax: { size: String(10 ** 12) }, body: Buffer.from('tiny') }], { end: false });
  const err = await t.throwsAsync(collect(Readable.from([lying])));
  t.is((err as { code?: string }).code, 'TAR');
  t.regex(err!.message, /truncated|end/i);
  t.true(process.memoryUsage().rss - before < 64 * 1024 * 1024);
});

test('unsupported entry types and garbage are TAR errors', async (t) => {
  const sparse = rawTar([file('x', 'y')]);
  sparse.write('S', 156, 'ascii');
  let sum = 0;
  sparse.write('        ', 148, 'ascii');
  for (const b of sparse.subarray(0, 512)) sum += b;
  sparse.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  const e1 = await t.throwsAsync(collect(Readable.from([sparse])));
  t.is((e1 as { code?: string }).code, 'TAR');
  const e2 = await t.throwsAsync(collect(Readable.from([Buffer.alloc(2048, 0x41)])));
  t.is((e2 as { code?: string }).code, 'TAR');
});

test('decompression is chosen by magic bytes: gzip, zstd, plain tar; corrupt zstd and xz refused clearly', async (t) => {
  const tarBytes = rawTar([file('a', 'b')]);
  t.is(detectCompression(zlib.gzipSync(tarBytes)), 'gzip');
  t.is(detectCompression(tarBytes), 'none');
  t.is(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd');
  const zstdBlob = execFileSync('zstd', ['-c', '-q'], { input: tarBytes });
  for (const blob of [zlib.gzipSync(tarBytes), tarBytes, zstdBlob]) {
    const got = await collect(await decompressLayer(Readable.from([blob.subarray(0, 3), blob.subarray(3)])));
    t.deepEqual(got.map((g) => g.entry.path), ['a']);
  }
  const zstd = await t.throwsAsync(collect(await decompressLayer(Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])]))));
  t.truthy(zstd, 'a corrupt zstd frame fails the read');
  const xz = await t.throwsAsync(decompressLayer(Readable.from([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1])])));
  t.regex(xz!.message, /xz/);
});

test('corrupt gzip is a TAR error naming the cause', async (t) => {
  const gz = zlib.gzipSync(rawTar([file('a', 'hello world '.repeat(1000))]));
  gz[gz.length - 20] ^= 0xff;
  gz[40] ^= 0xff;
  const err = await t.throwsAsync(collect(await decompressLayer(Readable.from([gz]))));
  t.is((err as { code?: string }).code, 'TAR');
});

test('a tar bomb (1 GiB of zeros in about 1 MB of gzip) streams in bounded memory', async (t) => {
  const GiB = 1024 * 1024 * 1024;
  // Build the gzip without ever holding the gigabyte: the header, then zeros in 16 MiB slices.
  const header = rawTar([{ name: 'zeros', type: '0', declaredSize: GiB }], { end: false });
  const gzip = zlib.createGzip({ level: 9 });
  const compressed: Buffer[] = [];
  gzip.on('data', (c: Buffer) => compressed.push(c));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  gzip.write(header);
  const slice = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < GiB / slice.length; i++) {
    if (!gzip.write(slice)) await new Promise((r) => gzip.once('drain', r));
  }
  gzip.end(Buffer.alloc(1024));
  await done;
  const blob = Buffer.concat(compressed);
  t.true(blob.length < 2 * 1024 * 1024, `bomb is ${blob.length} bytes`);

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  let bytes = 0;
  await readTar(await decompressLayer(Readable.from([blob])), async (entry, body) => {
    t.is(entry.size, GiB);
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
  });
  t.is(bytes, GiB);
  t.true(peak - baseline < 128 * 1024 * 1024, `rss grew by ${Math.round((peak - baseline) / 1e6)} MB`);
});

test("a failing source (a digest mismatch) surfaces as itself, not as a tar error", async (t) => {
  const { LadingError } = await import('../../src/errors.ts');
  const bytes = rawTar([file('a', Buffer.alloc(600_000, 1)), file('b', 'x')]);
  const source = new Readable({
    read() {
      this.push(bytes.subarray(0, 100_000));
      this.destroy(new LadingError('DIGEST_MISMATCH', 'blob does not match its digest'));
    },
  });
  const err = await t.throwsAsync(collect(await decompressLayer(source)));
  t.is((err as { code?: string }).code, 'DIGEST_MISMATCH');
});
