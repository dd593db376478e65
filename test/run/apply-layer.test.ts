/**
 * Applying layers to a root folder: OCI whiteouts and opaque directories, replacement rules, and
 * hostile archives that try to write outside the root (.., absolute names, symlinked parents,
 * links out of the root). A folder next to the root is the "host" that must never change.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer } from '../../src/run/apply-layer.ts';
import { findProgram } from '../../src/run/host.ts';
import { OwnerTable } from '../../src/run/ownership.ts';
import { RootResolver } from '../../src/run/safe-path.ts';
import { dir, file, hardlink, rawTar, symlink, type RawEntry } from './helpers/raw-tar.ts';

interface World {
  root: string;
  host: string;
  owners: OwnerTable;
  apply(entries: RawEntry[], canChown?: boolean): Promise<string[]>;
}

function world(t: { teardown(fn: () => void): void }): World {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'lading-apply-'));
  t.teardown(() => fs.rmSync(top, { recursive: true, force: true }));
  const root = path.join(top, 'root');
  const host = path.join(top, 'host');
  fs.mkdirSync(root);
  fs.mkdirSync(host);
  fs.writeFileSync(path.join(host, 'victim'), 'original');
  const owners = new OwnerTable(process.getuid!(), process.getgid!());
  const resolver = new RootResolver(root);
  return {
    root,
    host,
    owners,
    apply: async (entries, canChown = process.getuid?.() === 0) => {
      const result = await applyLayer({ resolver, owners, canChown, mkfifo: findProgram('mkfifo') }, Readable.from([rawTar(entries)]));
      return result.notes;
    },
  };
}

function hostUntouched(t: import('ava').ExecutionContext, w: World): void {
  t.deepEqual(fs.readdirSync(w.host), ['victim']);
  t.is(fs.readFileSync(path.join(w.host, 'victim'), 'utf8'), 'original');
  t.is(fs.statSync(path.join(w.host, 'victim')).nlink, 1);
  t.deepEqual(fs.readdirSync(path.dirname(w.root)).sort(), ['host', 'root']);
}

const read = (w: World, rel: string): string => fs.readFileSync(path.join(w.root, rel), 'utf8');

test('.. names are refused and nothing is written outside', async (t) => {
  const w = world(t);
  for (const entries of [[file('../escape', 'x')], [dir('a'), file('a/../../escape', 'x')], [file('../host/victim', 'pwned')]]) {
    const err = await t.throwsAsync(w.apply(entries));
    t.is((err as { code?: string }).code, 'TAR');
  }
  hostUntouched(t, w);
});

test('absolute names land inside the root', async (t) => {
  const w = world(t);
  await w.apply([file('/etc/abs', 'inside'), file(`${w.host}/victim`, 'inside too')]);
  t.is(read(w, 'etc/abs'), 'inside');
  t.is(read(w, `${w.host}/victim`), 'inside too');
  hostUntouched(t, w);
});

test('a file through a symlinked parent stays inside the root (absolute and relative links)', async (t) => {
  const w = world(t);
  const climb = '../'.repeat(20) + w.host.slice(1);
  await w.apply([symlink('abs', w.host), file('abs/victim', 'pwned'), symlink('rel', climb), file('rel/new', 'pwned'), dir('d'), symlink('d/up', '../../../..'), file('d/up/top', 'x')]);
  hostUntouched(t, w);
  t.is(read(w, `${w.host.slice(1)}/victim`), 'pwned', 'written where the link points inside the root');
  t.is(read(w, `${w.host.slice(1)}/new`), 'pwned');
  t.is(read(w, 'top'), 'x', '.. stops at the root');
  t.true(fs.lstatSync(path.join(w.root, 'abs')).isSymbolicLink(), 'the link itself is kept verbatim');
});

test('a symlink as the last component is replaced, never followed', async (t) => {
  const w = world(t);
  await w.apply([symlink('link', `${w.host}/victim`), file('link', 'replaced'), symlink('dirlink', w.host), dir('dirlink', { mode: 0o700 })]);
  hostUntouched(t, w);
  t.true(fs.lstatSync(path.join(w.root, 'link')).isFile());
  t.is(read(w, 'link'), 'replaced');
  t.true(fs.lstatSync(path.join(w.root, 'dirlink')).isDirectory());
});

test('hard links: out of the root refused, through a symlinked parent scoped, missing targets refused', async (t) => {
  const w = world(t);
  const out = await t.throwsAsync(w.apply([hardlink('h', '../../host/victim')]));
  t.is((out as { code?: string }).code, 'TAR');
  const viaLink = await t.throwsAsync(w.apply([symlink('evil', w.host), hardlink('h2', 'evil/victim')]));
  t.regex(viaLink!.message, /not in the layers so far/);
  const toDir = await t.throwsAsync(w.apply([dir('somedir'), hardlink('h3', 'somedir')]));
  t.regex(toDir!.message, /directory/);
  hostUntouched(t, w);
  await w.apply([file('a', 'shared'), hardlink('b', 'a')]);
  t.is(fs.statSync(path.join(w.root, 'a')).ino, fs.statSync(path.join(w.root, 'b')).ino);
});

test('whiteouts through symlinked parents and whiteouts of the root itself', async (t) => {
  const w = world(t);
  await w.apply([symlink('evil', w.host), file('evil/.wh.victim', '')]);
  hostUntouched(t, w);
  for (const name of ['.wh..', '.wh...', 'a/.wh.', '.wh.']) {
    const err = await t.throwsAsync(w.apply([dir('a'), file(name, '')]), undefined, name);
    t.is((err as { code?: string }).code, 'TAR', name);
  }
  t.true(fs.existsSync(w.root));
});

test('device nodes are skipped with a note; FIFOs are made', async (t) => {
  const w = world(t);
  const notes = await w.apply([
    { name: 'dev/console', type: '3', devmajor: 5, devminor: 1 },
    { name: 'dev/sda', type: '4', devmajor: 8, devminor: 0 },
    { name: 'pipe', type: '6', mode: 0o600 },
  ]);
  t.false(fs.existsSync(path.join(w.root, 'dev/console')));
  t.regex(notes.join('\n'), /skipped 2 device node\(s\) \(\/dev\/console, \/dev\/sda\)/);
  t.true(fs.lstatSync(path.join(w.root, 'pipe')).isFIFO());
});

test('huge declared sizes end in a TAR error', async (t) => {
  const w = world(t);
  const err = await t.throwsAsync(w.apply([{ name: 'big', type: '0', pax: { size: String(2 ** 40) }, body: Buffer.from('short') }]));
  t.is((err as { code?: string }).code, 'TAR');
});

test('duplicates: the last entry wins, whatever the types', async (t) => {
  const w = world(t);
  await w.apply([file('a', 'one'), file('a', 'two'), dir('b'), file('b/inside', 'x'), file('b', 'now a file'), file('c', 'file'), dir('c'), file('c/x', 'y')]);
  t.is(read(w, 'a'), 'two');
  t.is(read(w, 'b'), 'now a file');
  t.is(read(w, 'c/x'), 'y');
});

test('whiteouts delete lower files and trees; opaque markers hide the lower directory but keep this layer', async (t) => {
  const w = world(t);
  await w.apply([dir('d'), file('d/old', '1'), dir('d/sub'), file('d/sub/deep', '2'), file('d/gone', '3'), dir('tree'), file('tree/x', '4'), dir('keep'), file('keep/y', '5')]);
  // Layer 2: d/new2 comes before the opaque marker, d/sub is re-declared (its lower content must still go).
  await w.apply([file('d/new2', 'a'), dir('d/sub'), file('d/.wh..wh..opq', ''), file('d/new', 'b'), file('.wh.tree', ''), file('keep/.wh.y', '')]);
  t.deepEqual(fs.readdirSync(path.join(w.root, 'd')).sort(), ['new', 'new2', 'sub']);
  t.deepEqual(fs.readdirSync(path.join(w.root, 'd/sub')), []);
  t.false(fs.existsSync(path.join(w.root, 'tree')));
  t.deepEqual(fs.readdirSync(path.join(w.root, 'keep')), []);
});

test('modes (setuid, read-only directories), times and owners are applied', async (t) => {
  const w = world(t);
  await w.apply([
    dir('ro', { mode: 0o555 }),
    file('ro/inside', 'x', { mode: 0o4755, uid: 1000, gid: 1001 }),
    { name: 'ro/sub', type: '5', mode: 0o2775, uid: 7, gid: 8 },
  ]);
  t.is(fs.statSync(path.join(w.root, 'ro')).mode & 0o7777, 0o555);
  const inside = fs.statSync(path.join(w.root, 'ro/inside'));
  t.is(inside.mode & 0o7777, 0o4755);
  const sub = fs.statSync(path.join(w.root, 'ro/sub'));
  t.is(sub.mode & 0o7777, 0o2775);
  if (process.getuid?.() === 0) {
    t.deepEqual([inside.uid, inside.gid], [1000, 1001]);
    t.deepEqual([sub.uid, sub.gid], [7, 8]);
  }
});

test('without chown, owners are recorded instead of applied', async (t) => {
  const w = world(t);
  await w.apply([file('mine', 'x', { uid: 1000, gid: 1000 }), file('rootfile', 'y'), hardlink('alias', 'mine')], false);
  t.deepEqual(w.owners.recorded('mine'), { uid: 1000, gid: 1000 });
  t.deepEqual(w.owners.recorded('alias'), { uid: 1000, gid: 1000 });
  t.is(w.owners.recorded('rootfile'), undefined);
  await w.apply([file('.wh.mine', '')], false);
  t.is(w.owners.recorded('mine'), undefined);
});
