/**
 * What a step sees and what it leaves: Env, WorkingDir and User applied in every sandbox, build
 * args never persisted, networks, RUN --mount (cache, bind, secret, tmpfs) with no trace in the
 * layer, failures with their output, cancellation, and clean-up.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { LadingError } from '../../src/errors.ts';
import { Rootfs, type RootfsOptions, type RunSpec } from '../../src/run/index.ts';
import { testNeeding } from '../helpers/tools.ts';
import { blobsOf, loadBusybox, type Base } from './helpers/tree.ts';

const test = testNeeding(['bwrap', 'proot', 'unshare'], 'RUN steps');
const isRoot = process.getuid?.() === 0;

let base: Base;
test.before(async () => {
  base = await loadBusybox();
});

function tmp(t: { teardown(fn: () => void): void }, prefix = 'lading-step-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function withRoot<T>(t: ExecutionContext, options: RootfsOptions, fn: (root: Rootfs, work: string) => Promise<T>): Promise<T> {
  const work = tmp(t);
  const root = await Rootfs.create(path.join(work, 'rootfs'), options);
  try {
    for (const layer of blobsOf(base)) await root.addLayer(layer);
    return await fn(root, work);
  } finally {
    await root.dispose();
  }
}

/** Run a shell script and return its stdout. */
async function sh(root: Rootfs, script: string, extra: Partial<RunSpec> = {}): Promise<{ out: string; paths: string[] }> {
  let out = '';
  const r = await root.run({
    argv: ['/bin/sh', '-c', script],
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    workdir: '/',
    ...extra,
    onOutput: (chunk, stream) => {
      if (stream === 'stdout') out += chunk.toString();
    },
  });
  return { out, paths: r.entries.map((e) => e.path).sort() };
}

for (const sandbox of ['chroot', 'bwrap', 'proot'] as const) {
  test(`${sandbox}: Env, WorkingDir and User (by name, id, user:group; HOME; groups) are applied`, async (t) => {
    if (sandbox === 'chroot' && !isRoot) return t.pass('chroot needs root');
    await withRoot(t, { sandbox }, async (root) => {
      const probe = 'echo "$(id -u) $(id -g) [$(id -G)] $(pwd) $FOO $HOME"';
      const asRoot = await sh(root, probe, { env: ['FOO=bar', 'PATH=/bin'], workdir: '/work/dir' });
      t.is(asRoot.out, '0 0 [0] /work/dir bar /root\n');
      t.deepEqual(asRoot.paths, ['work', 'work/dir'], 'a missing WORKDIR is created, in the layer');
      t.is((await sh(root, probe, { user: 'app', workdir: '/home/app' })).out, '1000 1000 [1000] /home/app  /home/app\n');
      t.is((await sh(root, 'echo "$(id -u) $(id -g) $HOME"', { user: '4242' })).out, '4242 0 /\n', 'unknown uid: gid 0, HOME /');
      t.is((await sh(root, 'echo "$(id -u) $(id -g)"', { user: 'app:nobody' })).out, '1000 65534\n');
      t.is((await sh(root, 'echo "$(id -u) $(id -g)"', { user: '65534:1000' })).out, '65534 1000\n');
      const ghost = await t.throwsAsync(sh(root, 'true', { user: 'ghost' }));
      t.regex(ghost!.message, /unable to find user ghost/);
    });
  });
}

test('supplementary groups come from /etc/group membership, unless a group is given', async (t) => {
  if (!isRoot) return t.pass('uses chroot');
  await withRoot(t, { sandbox: 'bwrap' }, async (root) => {
    await sh(root, "echo 'wheel:x:10:app' >> /etc/group && echo 'audio:x:29:root,app' >> /etc/group");
    t.is((await sh(root, 'id -G', { user: 'app' })).out, '1000 10 29\n');
    t.is((await sh(root, 'id -G', { user: 'app:app' })).out, '1000\n');
    t.is((await sh(root, 'id -G')).out, '0 29\n');
  });
});

test('build args reach the step through env and are written nowhere', async (t) => {
  await withRoot(t, {}, async (root, work) => {
    const secret = 'arg-value-7f3a9c1e';
    const r = await sh(root, 'test "$TOKEN" = arg-value-7f3a9c1e && echo seen && touch /made', { env: [`TOKEN=${secret}`, 'PATH=/bin'] });
    t.is(r.out, 'seen\n');
    t.deepEqual(r.paths, ['made']);
    const found = execFileSync('grep', ['-rl', '--', secret, work], { encoding: 'utf8' }).trim();
    t.is(found, '', 'no file under the work folder holds the value');
  }).catch((err: { status?: number }) => {
    if (err.status === 1) return; // grep: no match
    throw err;
  });
});

test('network: the host network by default, only loopback with none', async (t) => {
  await withRoot(t, {}, async (root) => {
    const hostLines = fs.readFileSync('/proc/net/dev', 'utf8').trim().split('\n').length;
    const none = await sh(root, 'cat /proc/net/dev | wc -l', { network: 'none' });
    t.is(none.out.trim(), '3', 'header lines and lo');
    const shared = await sh(root, 'cat /proc/net/dev | wc -l');
    t.is(Number(shared.out.trim()), hostLines);
    t.regex((await sh(root, 'cat /etc/hosts')).out, /127\.0\.0\.1\s+localhost/);
  });
});

for (const snapshot of ['overlay', 'diff'] as const) {
  test(`${snapshot}: RUN --mount cache, bind, secret and tmpfs work and leave nothing in the layer`, async (t) => {
    const work = tmp(t);
    const cacheRoot = path.join(work, 'cache');
    const context = path.join(work, 'context');
    fs.mkdirSync(path.join(context, 'src'), { recursive: true });
    fs.writeFileSync(path.join(context, 'src', 'main.c'), 'int main;\n');
    const secretFile = path.join(work, 'secret.txt');
    fs.writeFileSync(secretFile, 's3cr3t');
    const mounts: RunSpec['mounts'] = [
      { type: 'cache', target: '/root/.cache/build', cacheRoot, id: 'build' },
      { type: 'bind', target: '/src', from: context, source: 'src' },
      { type: 'bind', target: '/scratch-rw', from: context, rw: true },
      { type: 'secret', id: 'token', file: secretFile },
      { type: 'secret', id: 'other', file: secretFile, target: '/etc/app/secret.conf', mode: 0o440 },
      { type: 'tmpfs', target: '/var/cache/tmp' },
    ];
    await withRoot(t, { snapshot }, async (root) => {
      const script = [
        'set -e',
        'cat /src/main.c',
        'cat /run/secrets/token; echo',
        'stat -c %a /run/secrets/token /etc/app/secret.conf',
        'echo one >> /root/.cache/build/count',
        'wc -l < /root/.cache/build/count',
        'echo x > /var/cache/tmp/file',
        'echo changed > /scratch-rw/src/main.c',
        '! touch /src/new 2>/dev/null',
        'echo built > /result',
      ].join('\n');
      const first = await sh(root, script, { mounts });
      t.is(first.out, 'int main;\ns3cr3t\n400\n440\n1\n');
      t.deepEqual(first.paths, ['result'], 'mount points and what was written through mounts are not in the layer');
      const second = await sh(root, 'echo two >> /root/.cache/build/count; wc -l < /root/.cache/build/count; ls /run 2>&1; ls /etc/app 2>&1 || true', { mounts: mounts.slice(0, 1) });
      t.regex(second.out, /^2\n/, 'the cache persisted between steps');
      t.notRegex(second.out, /secret/, 'no secret mount point left behind');
    });
    t.is(fs.readFileSync(path.join(context, 'src', 'main.c'), 'utf8'), 'int main;\n', 'rw bind writes are thrown away');
    await withRoot(t, { snapshot }, async (root) => {
      t.is((await sh(root, 'wc -l < /root/.cache/build/count', { mounts: mounts.slice(0, 1) })).out, '2\n', 'and across builds');
    });
  });
}

test('cache sharing=locked waits for the holder; private gets its own folder when busy', async (t) => {
  const cacheRoot = tmp(t);
  const mount = (sharing: 'locked' | 'private') => [{ type: 'cache' as const, target: '/c', cacheRoot, id: 'x', sharing }];
  await withRoot(t, {}, async (a) => {
    await withRoot(t, {}, async (b) => {
      const started = Date.now();
      const slow = sh(a, 'echo a >> /c/log; sleep 1; echo a2 >> /c/log', { mounts: mount('locked') });
      await new Promise((r) => setTimeout(r, 300));
      const waited = sh(b, 'cat /c/log', { mounts: mount('locked') });
      t.is((await waited).out, 'a\na2\n', 'the second step ran after the first released the lock');
      await slow;
      t.true(Date.now() - started >= 1000);
      const holding = sh(a, 'sleep 1; cat /c/log | wc -l', { mounts: mount('private') });
      await new Promise((r) => setTimeout(r, 300));
      const fresh = await sh(b, 'ls /c | wc -l', { mounts: mount('private') });
      t.is(fresh.out, '0\n', 'busy private cache: an empty one');
      t.is((await holding).out, '2\n');
    });
  });
});

test('a failing step: RUN_FAILED with the exit code and the last lines; the root is untouched', async (t) => {
  await withRoot(t, { snapshot: 'overlay' }, async (root) => {
    const err = await t.throwsAsync(sh(root, 'touch /half-done; for i in $(seq 1 50); do echo line $i; done; echo boom >&2; exit 7'));
    t.true(err instanceof LadingError);
    const e = err as LadingError;
    t.is(e.code, 'RUN_FAILED');
    t.is(e.details.exitCode, 7);
    t.regex(String(e.details.output), /line 50\nboom$/);
    t.notRegex(String(e.details.output), /line 1\n/, 'only the last lines');
    t.is((await sh(root, 'ls /half-done 2>&1 || echo gone')).out.trim().split('\n').pop(), 'gone');
  });
});

test('cancelling a step kills it quickly, leaves no process and no mount, and the root stays usable', async (t) => {
  await withRoot(t, {}, async (root) => {
    const controller = new AbortController();
    const started = Date.now();
    const running = sh(root, 'sleep 37.5; touch /late', { signal: controller.signal });
    setTimeout(() => controller.abort(), 400);
    const err = await t.throwsAsync(running);
    t.is((err as LadingError).code, 'INTERRUPTED');
    t.true(Date.now() - started < 5000);
    await new Promise((r) => setTimeout(r, 200));
    t.false(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).includes('sleep 37.5'));
    t.is((await sh(root, 'ls /late 2>/dev/null || echo none')).out, 'none\n');
  });
  t.false(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes('lading-step-'));
});

test('consecutive steps build on each other without extracting again; dispose removes everything', async (t) => {
  const work = tmp(t);
  const root = await Rootfs.create(work);
  for (const layer of blobsOf(base)) await root.addLayer(layer);
  const dir = await root.path();
  const inode = fs.statSync(path.join(dir, 'bin/busybox')).ino;
  await sh(root, 'echo 1 > /step1');
  t.is((await sh(root, 'cat /step1; echo 2 > /step2')).out, '1\n');
  const after = await root.path();
  t.is(after, dir);
  t.is(fs.statSync(path.join(after, 'bin/busybox')).ino, inode, 'the base was not extracted again');
  t.is(fs.readFileSync(path.join(after, 'step2'), 'utf8'), '2\n', 'path() shows the latest step');
  await root.dispose();
  await root.dispose();
  t.deepEqual(fs.readdirSync(work), []);
  await t.throwsAsync(root.run({ argv: ['true'], env: [], workdir: '/' }), { message: /disposed/ });
});
