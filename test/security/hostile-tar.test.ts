/**
 * Hostile base images through the whole build: a layer written by hand (names, types and sizes
 * no honest tool writes) inside an OCI layout folder, used as `FROM base` + COPY and as
 * `COPY --from=base`. Whatever the layer says, nothing may be written outside the build's own
 * folders, memory stays bounded, and the build either fails with a TAR/IMAGE error naming the
 * entry or applies the entry inside the image, as Docker's (chrooted) extraction would.
 * The RUN path's extraction (src/run/apply-layer.ts) is tested in test/run/.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, isLadingError, type BuildResult } from '../../src/index.ts';
import { tempDir } from '../helpers/cli.ts';
import { buildInChild } from './helpers/child.ts';
import { hostileBase, listTree, rawTar, readLayoutLayers, writeTarBomb, type HostileBase, type LayerFile, type RawEntry } from './helpers/hostile-tar.ts';

interface Sandbox {
  root: string;
  outside: string;
  ctx: string;
  cache: string;
}

/** A temp folder with the build's folders and, beside them, an `outside` folder hostile names aim at. */
async function sandbox(t: ExecutionContext): Promise<Sandbox> {
  const root = await tempDir(t, 'lading-hostile-tar-');
  const outside = path.join(root, 'outside');
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'keep'), 'host file');
  const ctx = path.join(root, 'w', 'ctx');
  await fs.mkdir(ctx, { recursive: true });
  await fs.writeFile(path.join(ctx, 'hello.txt'), 'hello');
  return { root, outside, ctx, cache: path.join(root, 'w', 'cache') };
}

const FROM_BASE = 'FROM base\nCOPY hello.txt /hello.txt\n';
const COPY_FROM_ROOT = 'FROM scratch\nCOPY --from=base / /copied/\n';

type Outcome = { ok: true; result: BuildResult; layers: Map<string, LayerFile>[] } | { ok: false; code: string; message: string };

async function buildWith(s: Sandbox, base: HostileBase, dockerfile: string, label: string): Promise<Outcome> {
  await fs.writeFile(path.join(s.ctx, 'Dockerfile'), dockerfile);
  const dest = path.join(s.root, 'w', `out-${label}`);
  try {
    const result = await build({ context: s.ctx, cacheDir: s.cache, buildContexts: { base: base.ref }, outputs: [{ type: 'oci', dest }] });
    return { ok: true, result, layers: await readLayoutLayers(dest) };
  } catch (err) {
    if (!isLadingError(err)) throw err;
    return { ok: false, code: err.code, message: err.message };
  }
}

/** Nothing outside the build's folders changed, and the store's temporary folder is empty. */
async function assertContained(t: ExecutionContext, s: Sandbox, absoluteProbes: string[] = []): Promise<void> {
  t.deepEqual(await listTree(s.outside), ['keep'], 'nothing was written beside the build folders');
  t.is(await fs.readFile(path.join(s.outside, 'keep'), 'utf8'), 'host file');
  t.deepEqual((await fs.readdir(s.root)).sort(), ['outside', 'w']);
  for (const probe of absoluteProbes) await t.throwsAsync(fs.lstat(probe), undefined, `${probe} must not exist on the host`);
  t.deepEqual(await fs.readdir(path.join(s.cache, 'tmp')).catch(() => []), [], 'no temporary files left in the store');
}

async function both(t: ExecutionContext, layers: RawEntry[][], probes: string[] = []): Promise<{ s: Sandbox; from: Outcome; copy: Outcome }> {
  const s = await sandbox(t);
  const base = await hostileBase(path.join(s.root, 'w', 'base'), layers.map((l) => rawTar(l)));
  const from = await buildWith(s, base, FROM_BASE, 'from');
  const copy = await buildWith(s, base, COPY_FROM_ROOT, 'copy');
  await assertContained(t, s, probes);
  return { s, from, copy };
}

function lastLayer(o: Outcome): Map<string, LayerFile> {
  if (!o.ok) throw new Error(`expected success, got ${o.code}: ${o.message}`);
  return o.layers.at(-1)!;
}

test('names climbing out with ../ fail the build with a TAR error naming the entry', async (t) => {
  const { from, copy } = await both(t, [[{ name: 'ok.txt', data: 'ok' }, { name: '../../outside/pwned', data: 'x' }, { name: 'a/../../../outside/pwned2', data: 'y' }]]);
  for (const o of [from, copy]) {
    t.false(o.ok);
    if (!o.ok) {
      t.is(o.code, 'TAR');
      t.regex(o.message, /"\.\.\/\.\.\/outside\/pwned" points outside the root/);
    }
  }
});

test('absolute names land inside the image, never on the host', async (t) => {
  const probe = `/tmp/lading-hostile-${randomBytes(6).toString('hex')}`;
  const { copy, from } = await both(t, [[{ name: `${probe}/abs`, data: 'abs' }, { name: '/etc/lading-abs', data: 'abs2' }]], [probe, '/etc/lading-abs']);
  t.true(from.ok);
  const layer = lastLayer(copy);
  t.is(layer.get(`copied${probe}/abs`)?.content, 'abs');
  t.is(layer.get('copied/etc/lading-abs')?.content, 'abs2');
});

test('a symlink then a file through it: nothing reaches the symlink target on the host', async (t) => {
  const probe = `/tmp/lading-hostile-${randomBytes(6).toString('hex')}`;
  await fs.mkdir(probe);
  t.teardown(() => fs.rm(probe, { recursive: true, force: true }));
  const s = await sandbox(t);
  const base = await hostileBase(path.join(s.root, 'w', 'base'), [
    rawTar([
      { name: 'abs', type: 'symlink', linkname: probe },
      { name: 'abs/pwned', data: 'through an absolute link' },
      { name: 'rel', type: 'symlink', linkname: '../../../../../../../outside' },
      { name: 'rel/pwned', data: 'through a relative link' },
    ]),
  ]);
  const from = await buildWith(s, base, `${FROM_BASE}COPY hello.txt /abs/copied-through-link\n`, 'from');
  const copy = await buildWith(s, base, COPY_FROM_ROOT, 'copy');
  t.deepEqual(await fs.readdir(probe), [], 'the absolute symlink target on the host is untouched');
  await assertContained(t, s);
  // A COPY destination through the link is resolved inside the image (abs -> <probe> in the image).
  t.is(lastLayer(from).get(`${probe.slice(1)}/copied-through-link`)?.content, 'hello');
  // COPY --from copies the link as a link; its target is never read from the host.
  const layer = lastLayer(copy);
  t.like(layer.get('copied/abs'), { type: 'symlink', linkname: probe });
  t.like(layer.get('copied/rel'), { type: 'symlink' });
  for (const [p, f] of layer) t.false(f.content?.includes('host file') ?? false, `${p} holds no host content`);
});

test('hard links: out of the root fail; absolute ones resolve inside the image, never to host files', async (t) => {
  const out = await both(t, [[{ name: 'hl', type: 'hardlink', linkname: '../../outside/keep' }]]);
  for (const o of [out.from, out.copy]) {
    t.false(o.ok);
    if (!o.ok) t.regex(o.message, /hard link target of "hl".*points outside the root/);
  }
  // /etc/passwd exists on every host: the link must give the image's file, not the host's.
  const inside = await both(t, [[{ name: 'etc/passwd', data: 'image-passwd\n' }, { name: 'hl', type: 'hardlink', linkname: '/etc/passwd' }]]);
  t.is(lastLayer(inside.copy).get('copied/hl')?.content, 'image-passwd\n');
  // The same link into an image without the file: an error naming it, still no host content.
  const missing = await both(t, [[{ name: 'hl', type: 'hardlink', linkname: '/etc/passwd' }]]);
  t.true(missing.from.ok, 'FROM alone never reads the link');
  t.false(missing.copy.ok);
  if (!missing.copy.ok) {
    t.is(missing.copy.code, 'IMAGE');
    t.regex(missing.copy.message, /\/hl is missing from its layers/);
  }
});

test('device nodes and fifos are never created on the host; COPY --from skips them', async (t) => {
  const { from, copy } = await both(t, [
    [
      { name: 'dev/', type: 'directory' },
      { name: 'dev/mem', type: 'char', devmajor: 1, devminor: 1 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
      { name: 'dev/fifo', type: 'fifo' },
      { name: 'f', data: 'f' },
    ],
  ]);
  t.true(from.ok);
  const layer = lastLayer(copy);
  t.is(layer.get('copied/f')?.content, 'f');
  t.is(layer.get('copied/dev')?.type, 'directory');
  t.false(layer.has('copied/dev/mem') || layer.has('copied/dev/sda') || layer.has('copied/dev/fifo'));
});

test('a declared size of 8 GiB over 4 bytes: a TAR error, no allocation', async (t) => {
  const { from, copy } = await both(t, [[{ name: 'huge', data: 'tiny', size: 8 * 1024 ** 3 }]]);
  for (const o of [from, copy]) {
    t.false(o.ok);
    if (!o.ok) {
      t.is(o.code, 'TAR');
      t.regex(o.message, /truncated/);
    }
  }
});

test('whiteouts of the root (opaque /, .wh., .wh.., .wh...) hide lower layers only, inside the image', async (t) => {
  const { from, copy } = await both(t, [
    [{ name: 'etc/passwd', data: 'p' }, { name: 'keep', data: 'k' }],
    [{ name: '.wh..wh..opq' }, { name: '.wh.' }, { name: '.wh..' }, { name: '.wh...' }, { name: '/.wh.etc' }, { name: 'new', data: 'n' }],
  ]);
  t.true(from.ok);
  const layer = lastLayer(copy);
  t.deepEqual([...layer.keys()].sort(), ['copied', 'copied/new']);
  t.is(layer.get('copied/new')?.content, 'n');
});

test('duplicate entries: the last one wins, whatever the types', async (t) => {
  const { from, copy } = await both(t, [
    [
      { name: 'dup', data: 'first' },
      { name: 'dup', data: 'second' },
      { name: 'd2', data: 'a file first' },
      { name: 'd2/', type: 'directory' },
      { name: 'd2/in', data: 'in' },
      { name: 'd3/', type: 'directory' },
      { name: 'd3/x', data: 'x' },
      { name: 'd3', data: 'now a file' },
    ],
  ]);
  t.true(from.ok);
  const layer = lastLayer(copy);
  t.is(layer.get('copied/dup')?.content, 'second');
  t.is(layer.get('copied/d2')?.type, 'directory');
  t.is(layer.get('copied/d2/in')?.content, 'in');
  t.is(layer.get('copied/d3')?.content, 'now a file');
  t.false(layer.has('copied/d3/x'), 'a directory replaced by a file loses what it held');
});

test('a tar bomb (1 GiB of zeros in about 1 MB of gzip): builds pass in bounded memory', async (t) => {
  const s = await sandbox(t);
  const gz = path.join(s.root, 'w', 'bomb.tar.gz');
  const bomb = await writeTarBomb(gz, 1024 ** 3, [{ name: 'after.txt', data: 'after the bomb' }]);
  t.true(bomb.gzipBytes < 2 * 1024 * 1024, `the bomb is small when compressed (${bomb.gzipBytes} bytes)`);
  const base = await hostileBase(path.join(s.root, 'w', 'base'), [{ gzipFile: gz, diffID: bomb.diffID }]);
  await fs.rm(gz);
  const limitKiB = 400 * 1024;
  const cases = [
    { label: 'from', dockerfile: FROM_BASE },
    { label: 'copy-small', dockerfile: 'FROM scratch\nCOPY --from=base /after.txt /after.txt\n' },
    { label: 'copy-bomb', dockerfile: 'FROM scratch\nCOPY --from=base /bomb /bomb\n' },
  ];
  for (const c of cases) {
    await fs.writeFile(path.join(s.ctx, 'Dockerfile'), c.dockerfile);
    const dest = path.join(s.root, 'w', `out-${c.label}`);
    const r = await buildInChild({ context: s.ctx, cacheDir: s.cache, buildContexts: { base: base.ref }, outputs: [{ type: 'oci', dest }] });
    t.true(r.ok, `${c.label}: ${r.message ?? ''}${r.stderr}`);
    t.true(r.maxRssKiB < limitKiB, `${c.label}: peak RSS ${Math.round(r.maxRssKiB / 1024)} MiB stays under ${limitKiB / 1024} MiB`);
    t.log(`${c.label}: peak RSS ${Math.round(r.maxRssKiB / 1024)} MiB`);
    if (c.label === 'copy-small') t.is((await readLayoutLayers(dest))[0]!.get('after.txt')?.content, 'after the bomb');
    await fs.rm(dest, { recursive: true, force: true });
  }
  await assertContained(t, s);
});

test('a directory header declaring a size does not hang the build (its body is empty, as in tar-stream)', async (t) => {
  // Found by fuzzing: tar-stream never ends the body stream of such an entry, and reading it waited forever.
  const { readTar } = await import('../../src/layer/tar-reader.ts');
  const { Readable } = await import('node:stream');
  const layer = rawTar([{ name: 'd/', type: 'directory', size: 100 }, { name: 'd/f', data: 'after' }]);
  const seen: string[] = [];
  await readTar(Readable.from([layer]), async (e, body) => {
    for await (const _ of body) void _;
    seen.push(`${e.type}:${e.path}`);
  });
  t.deepEqual(seen, ['directory:d', 'file:d/f']);
  const { from, copy } = await both(t, [[{ name: 'd/', type: 'directory', size: 100 }, { name: 'd/f', data: 'after' }]]);
  t.true(from.ok);
  t.is(lastLayer(copy).get('copied/d/f')?.content, 'after');
});

test('ADD of a hostile local archive: ../ names fail naming the entry; absolute names and links through symlinks stay inside the image', async (t) => {
  const s = await sandbox(t);
  const probe = path.join(s.root, 'abs-probe');
  const add = async (label: string, entries: RawEntry[]): Promise<Outcome> => {
    await fs.writeFile(path.join(s.ctx, `${label}.tar`), rawTar(entries));
    const dest = path.join(s.root, 'w', `out-${label}`);
    await fs.writeFile(path.join(s.ctx, 'Dockerfile'), `FROM scratch\nADD ${label}.tar /x/\n`);
    try {
      const result = await build({ context: s.ctx, cacheDir: s.cache, outputs: [{ type: 'oci', dest }] });
      return { ok: true, result, layers: await readLayoutLayers(dest) };
    } catch (err) {
      if (!isLadingError(err)) throw err;
      return { ok: false, code: err.code, message: err.message };
    }
  };

  const climbing = await add('climb', [{ name: 'ok.txt', data: 'ok' }, { name: '../../../outside/pwned', data: 'x' }]);
  t.false(climbing.ok);
  if (!climbing.ok) t.regex(climbing.message, /outside\/pwned/);

  const absolute = await add('absolute', [{ name: probe, data: 'abs' }]);
  t.deepEqual([...lastLayer(absolute).keys()].filter((k) => k.includes('abs-probe')), [`x${probe}`], 'an absolute name lands under the ADD destination');

  const through = await add('through', [
    { name: 'link', type: 'symlink', linkname: s.outside },
    { name: 'link/pwned', data: 'through the link' },
  ]);
  if (through.ok) {
    t.is(lastLayer(through).get('x/link')?.linkname, s.outside, 'the symlink is kept as a symlink in the image');
    // The file behind the link is an entry of the image (a runtime resolves it inside the
    // container's root, as BuildKit's chrooted extraction would); the host target is untouched.
    t.is(lastLayer(through).get('x/link/pwned')?.content, 'through the link');
    t.deepEqual(await listTree(s.outside), ['keep']);
  } else {
    t.is(through.code, 'TAR');
  }
  await assertContained(t, s, [probe]);
});
