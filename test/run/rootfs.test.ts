/**
 * RUN end to end, as root: steps change files in every way a tar can say, the layers built from
 * our entries are unpacked by umoci over the base, and the tree must equal the one a plain chroot
 * of an unpacked copy gets from the same commands. Every sandbox and both snapshot methods.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { SandboxKind, SnapshotKind } from '../../src/run/index.ts';
import { STEP1, STEP2, buildWithSteps } from './helpers/steps.ts';
import { testNeeding } from '../helpers/tools.ts';
import { listTree, loadBusybox, referenceTreeOf, umociUnpack, type Base } from './helpers/tree.ts';

const test = testNeeding(['umoci', 'chroot', 'unshare', 'bwrap', 'proot'], 'RUN rootfs (root)');
const isRoot = process.getuid?.() === 0;

let base: Base;
test.before(async () => {
  base = await loadBusybox();
});

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lading-run-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const matrix: [SandboxKind, SnapshotKind][] = [
  ['chroot', 'overlay'],
  ['chroot', 'diff'],
  ['bwrap', 'overlay'],
  ['bwrap', 'diff'],
  ['proot', 'overlay'],
];

for (const [sandbox, snapshot] of matrix) {
  test(`${sandbox}/${snapshot}: the image from our layers equals a chroot running the same steps`, async (t) => {
    if (!isRoot) return t.pass('needs root (the rootless suite covers the rest)');
    const work = tmp(t);
    const { layout } = await buildWithSteps(base, work, sandbox, snapshot, [STEP1, STEP2]);
    const ours = listTree(umociUnpack(layout, path.join(work, 'ours')));
    const reference = listTree(referenceTreeOf(base.layout, path.join(work, 'ref'), [STEP1, STEP2]));
    t.deepEqual(ours, reference);
    t.true(ours.some((l) => l.startsWith('opt/app/hello.txt ') && l.includes('same-as=opt/app/hard')), 'the hard link survives');
    t.true(ours.some((l) => l.startsWith('opt/app/fifo 600 0:0 fifo')));
  });
}

test('overlay and diff snapshots give the same entries for the same steps', async (t) => {
  if (!isRoot) return t.pass('needs root');
  const overlay = await buildWithSteps(base, tmp(t), 'bwrap', 'overlay', [STEP1, STEP2]);
  const diff = await buildWithSteps(base, tmp(t), 'bwrap', 'diff', [STEP1, STEP2]);
  t.deepEqual(overlay.normalised, diff.normalised);
  t.true(overlay.normalised[0]!.includes('home/app/.wh..wh..opq file 644 0:0 0'), 'a replaced directory is opaque');
  t.true(overlay.normalised[0]!.includes('var/.wh.tmp file 644 0:0 0'), 'a deleted directory is one whiteout');
});

test('steps that only read and traverse produce no entries', async (t) => {
  if (!isRoot) return t.pass('needs root');
  for (const snapshot of ['overlay', 'diff'] as const) {
    const { results } = await buildWithSteps(base, tmp(t), 'bwrap', snapshot, ['cat /etc/passwd > /proc/self/fd/1; ls -R /usr /home > /dev/null; cd /var/tmp && pwd']);
    t.deepEqual(results[0]!.entries, [], snapshot);
  }
});

test('the built image runs: umoci unpack, then bwrap prints what the step promised', async (t) => {
  if (!isRoot) return t.pass('needs root');
  const work = tmp(t);
  const { layout } = await buildWithSteps(base, work, 'bwrap', 'overlay', [STEP1, STEP2]);
  const rootfs = umociUnpack(layout, path.join(work, 'bundle'));
  const out = execFileSync('bwrap', ['--bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--unshare-pid', '--clearenv', '--setenv', 'PATH', '/usr/local/bin:/bin', '/usr/local/bin/hello'], {
    encoding: 'utf8',
  });
  t.is(out, 'built by lading\n');
});
