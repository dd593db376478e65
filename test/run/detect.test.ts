/**
 * Choosing the sandbox: the default for this user, overrides, and the error when nothing can run,
 * with programs made "missing" by searching a PATH that only links some of them.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LadingError } from '../../src/errors.ts';
import { detectSandbox, Rootfs } from '../../src/run/index.ts';
import { blobsOf, loadBusybox } from './helpers/tree.ts';

const isRoot = process.getuid?.() === 0;
const ALL = ['bwrap', 'proot', 'unshare', 'mount', 'umount', 'env', 'sh', 'true', 'ldd', 'mkfifo', 'cp', 'chroot', 'newuidmap', 'newgidmap'];

function pathWith(t: { teardown(fn: () => void): void }, names: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lading-path-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const name of names) {
    const found = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
    if (found) fs.symlinkSync(found, path.join(dir, name));
  }
  return dir;
}

test('as root the default is chroot; bwrap and proot can be forced', async (t) => {
  if (!isRoot) return t.pass('root only');
  const auto = await detectSandbox();
  t.is(auto.kind, 'chroot');
  t.regex(auto.reasons[0]!, /^chroot: works \(as root\)/);
  t.is((await detectSandbox('bwrap')).kind, 'bwrap');
  t.is((await detectSandbox('proot')).kind, 'proot');
});

test('with nothing installed: a SANDBOX error naming each program tried, why, and what to install', async (t) => {
  const searchPath = pathWith(t, []);
  const err = await t.throwsAsync(detectSandbox(undefined, { searchPath }));
  t.true(err instanceof LadingError);
  t.is((err as LadingError).code, 'SANDBOX');
  t.regex(err!.message, /bwrap: bwrap not found on PATH/);
  t.regex(err!.message, /proot: proot not found on PATH/);
  t.regex(err!.message, /chroot: (unshare \(util-linux\) not found on PATH|needs root)/);
  t.regex((err as LadingError).hint!, /install bubblewrap.*proot/s);
  t.is(((err as LadingError).details.tried as string[]).length, 3);
});

test('a forced sandbox that is missing is an error about that sandbox only', async (t) => {
  const searchPath = pathWith(t, ALL.filter((n) => n !== 'bwrap'));
  const err = await t.throwsAsync(detectSandbox('bwrap', { searchPath }));
  t.is((err as LadingError).code, 'SANDBOX');
  t.regex(err!.message, /^the bwrap sandbox cannot run RUN steps here: bwrap: bwrap not found on PATH/);
});

test('without bwrap and unshare, proot is chosen and runs a step', async (t) => {
  const searchPath = pathWith(t, ALL.filter((n) => n !== 'bwrap' && n !== 'unshare'));
  const found = await detectSandbox(undefined, { searchPath });
  t.is(found.kind, 'proot');
  t.true(found.reasons.some((r) => /bwrap: bwrap not found/.test(r)));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lading-detect-'));
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const root = await Rootfs.create(work, { searchPath });
  try {
    t.is(root.sandbox, 'proot');
    t.is(root.snapshot, 'diff', 'no mount namespace without unshare: the diff fallback');
    for (const layer of blobsOf(await loadBusybox())) await root.addLayer(layer);
    const r = await root.run({ argv: ['/bin/sh', '-c', 'echo hi > /made-by-proot'], env: [], workdir: '/' });
    t.deepEqual(
      r.entries.map((e) => `${e.path} ${e.type} ${e.uid}:${e.gid}`),
      ['made-by-proot file 0:0'],
    );
  } finally {
    await root.dispose();
  }
  t.deepEqual(fs.readdirSync(work), []);
});
