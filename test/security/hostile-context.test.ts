/**
 * Hostile build contexts: symlinks aiming outside it (beyond the cases in
 * test/engine/copy.test.ts), a .dockerignore trying to re-include `../`, files that change while
 * they are hashed (a writer racing the build in another process), and files the user running
 * lading cannot read (run as an unprivileged user made with useradd, since root reads everything).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { build, isLadingError, type BuildResult } from '../../src/index.ts';
import { statSignature } from '../../src/context/stat-cache.ts';
import { sha256 } from '../../src/image/digest.ts';
import { tempDir } from '../helpers/cli.ts';
import { buildInChild } from './helpers/child.ts';
import { listTree, readLayoutLayers } from './helpers/hostile-tar.ts';

async function context(t: ExecutionContext, files: Record<string, string | { link: string }>): Promise<{ root: string; ctx: string; cache: string; out: string }> {
  const root = await tempDir(t, 'lading-hostile-ctx-');
  const ctx = path.join(root, 'ctx');
  await fs.mkdir(ctx);
  await fs.writeFile(path.join(root, 'host-secret'), 'HOST-SECRET-CONTENT');
  for (const [name, v] of Object.entries(files)) {
    const p = path.join(ctx, name);
    await fs.mkdir(path.dirname(p), { recursive: true });
    if (typeof v === 'string') await fs.writeFile(p, v);
    else await fs.symlink(v.link, p);
  }
  return { root, ctx, cache: path.join(root, 'cache'), out: path.join(root, 'out') };
}

async function tryBuild(c: { ctx: string; cache: string; out: string }): Promise<{ ok: true; result: BuildResult } | { ok: false; code: string; message: string }> {
  await fs.rm(c.out, { recursive: true, force: true });
  try {
    return { ok: true, result: await build({ context: c.ctx, cacheDir: c.cache, outputs: [{ type: 'oci', dest: c.out }] }) };
  } catch (err) {
    if (!isLadingError(err)) throw err;
    return { ok: false, code: err.code, message: err.message };
  }
}

/** Every file body in every layer of the output, concatenated (to grep for host content). */
async function allLayerText(out: string): Promise<string> {
  const layers = await readLayoutLayers(out);
  return layers.flatMap((m) => [...m.entries()].map(([p, f]) => `${p}\t${f.linkname ?? ''}\t${f.content ?? ''}`)).join('\n');
}

test('symlinks to the host, through parents, in wildcards and in loops never make COPY read outside', async (t) => {
  const c = await context(t, {
    'abs-file': { link: '/etc/passwd' },
    'rel-file': { link: '../host-secret' },
    'dir-link': { link: '..' },
    'abs-dir': { link: '/' },
    'loop-a': { link: 'loop-b' },
    'loop-b': { link: 'loop-a' },
    'deep/up': { link: '../../..' },
    'ok.txt': 'ok',
  });
  const sources = ['abs-file', 'rel-file', 'dir-link/host-secret', 'abs-dir/etc/passwd', 'deep/up/host-secret', 'd*-link/host-secret', 'abs-dir/../host-secret'];
  for (const source of sources) {
    await fs.writeFile(path.join(c.ctx, 'Dockerfile'), `FROM scratch\nCOPY ${source} /got\n`);
    const r = await tryBuild(c);
    t.false(r.ok, `COPY ${source} must not find a host file`);
    if (!r.ok) {
      t.is(r.code, 'CONTEXT', source);
      t.regex(r.message, /matches nothing in the build context/, source);
      t.false(r.message.includes('HOST-SECRET-CONTENT'));
    }
  }
  await fs.writeFile(path.join(c.ctx, 'Dockerfile'), 'FROM scratch\nCOPY loop-a /got\n');
  const loop = await tryBuild(c);
  t.false(loop.ok);
  if (!loop.ok) t.regex(loop.message, /too many levels of symbolic links/);
  // The whole context: links are copied as links, none is followed.
  await fs.rm(path.join(c.ctx, 'loop-a'));
  await fs.writeFile(path.join(c.ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /ctx/\n');
  const all = await tryBuild(c);
  t.true(all.ok, all.ok ? '' : all.message);
  const text = await allLayerText(c.out);
  t.false(text.includes('HOST-SECRET-CONTENT'));
  t.false(text.includes('root:x:0:0'), 'the host /etc/passwd is not in the layer');
  t.regex(text, /ctx\/abs-file\t\/etc\/passwd\t/);
  // An absolute link resolves inside the context, as in a container: it finds the context's own file.
  await fs.mkdir(path.join(c.ctx, 'etc'));
  await fs.writeFile(path.join(c.ctx, 'etc', 'passwd'), 'context passwd');
  await fs.writeFile(path.join(c.ctx, 'Dockerfile'), 'FROM scratch\nCOPY abs-file /got\n');
  const scoped = await tryBuild(c);
  t.true(scoped.ok);
  t.is((await readLayoutLayers(c.out)).at(-1)!.get('got')?.content, 'context passwd');
});

test('.dockerignore cannot re-include anything outside the context with ../ patterns', async (t) => {
  const c = await context(t, {
    '.dockerignore': '*\n!../host-secret\n!../../**\n!/../host-secret\n!ok.txt\n!Dockerfile\n',
    'ok.txt': 'ok',
    Dockerfile: 'FROM scratch\nCOPY . /ctx/\n',
  });
  const r = await tryBuild(c);
  t.true(r.ok, r.ok ? '' : r.message);
  const layer = (await readLayoutLayers(c.out)).at(-1)!;
  t.deepEqual([...layer.keys()].sort(), ['ctx', 'ctx/Dockerfile', 'ctx/ok.txt']);
  await fs.writeFile(path.join(c.ctx, 'Dockerfile'), 'FROM scratch\nCOPY ../host-secret /x\n');
  const escape = await tryBuild(c);
  t.false(escape.ok);
  t.false(JSON.stringify(await listTree(c.cache)).includes('host-secret'));
});

/**
 * A writer in another process rewrites two files (one read in one call, one streamed) with
 * same-size content in bursts, pausing now and then so that some builds get through. Every build
 * either fails with CONTEXT ("changed") or succeeds, and for each success the cache key and the
 * layer agree (see helpers/race-child.ts). At the end the stat cache may hold no digest that
 * disagrees with the file as it is.
 */
async function race(t: ExecutionContext): Promise<RaceResult> {
  const c = await context(t, { Dockerfile: 'FROM scratch\nCOPY small.bin big.bin /data/\n' });
  await fs.writeFile(path.join(c.ctx, 'small.bin'), Buffer.alloc(64 * 1024, 'a'));
  // Above the 1 MiB single-read limit of the layer writer and the 2 MiB one of the hasher: streamed.
  await fs.writeFile(path.join(c.ctx, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 'a'));
  const writerSource = `
    const fs = require('node:fs');
    const files = ${JSON.stringify([path.join(c.ctx, 'small.bin'), path.join(c.ctx, 'big.bin')])};
    const fds = files.map((f) => fs.openSync(f, 'r+'));
    const sizes = files.map((f) => fs.statSync(f).size);
    let n = 0;
    const tick = () => {
      const until = Date.now() + 2 + Math.random() * 20;
      while (Date.now() < until) {
        const byte = 97 + (n++ % 26);
        for (let i = 0; i < fds.length; i++) {
          const len = i === 0 ? sizes[i] : 65536;
          const at = i === 0 ? 0 : Math.floor(Math.random() * (sizes[i] - len));
          fs.writeSync(fds[i], Buffer.alloc(len, byte), 0, len, at);
        }
      }
      setTimeout(tick, 10 + Math.random() * 80);
    };
    tick();`;
  const writer = spawn(process.execPath, ['-e', writerSource], { stdio: 'ignore' });
  const stopWriter = async (): Promise<void> => {
    if (writer.exitCode !== null || writer.signalCode !== null) return;
    const closed = new Promise((r) => writer.once('close', r));
    writer.kill('SIGKILL');
    await closed;
  };
  t.teardown(stopWriter);
  const iterations = Number(process.env.LADING_RACE_ITERATIONS ?? 25);
  const work = path.join(c.root, 'work');
  await fs.mkdir(work);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'helpers', 'race-child.ts'), JSON.stringify({ ctx: c.ctx, cache: c.cache, work, iterations })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  await new Promise((r) => child.once('close', r));
  await stopWriter();
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as RaceResult;
  // The stat cache: any entry whose signature matches the file now must hold its true digest.
  result.staleStatEntries = [];
  const statDir = path.join(c.cache, 'statcache');
  for (const name of await fs.readdir(statDir).catch(() => [] as string[])) {
    const saved = JSON.parse(readFileSync(path.join(statDir, name), 'utf8')) as { entries: Record<string, { sig: string; digest: string }> };
    for (const [file, entry] of Object.entries(saved.entries)) {
      if (file.startsWith(c.ctx) && statSignature(lstatSync(file)) === entry.sig && entry.digest !== sha256(readFileSync(file))) result.staleStatEntries.push(file);
    }
  }
  t.log(`${iterations} builds against a racing writer: ${result.built} built, ${result.refused} refused as changed, ${result.unhandled.length} unhandled rejections`);
  return result;
}

interface RaceResult {
  built: number;
  refused: number;
  otherErrors: string[];
  mismatches: string[];
  refusals: string[];
  unhandled: string[];
  staleStatEntries: string[];
}

let raced: Promise<RaceResult> | undefined;

test('a file rewritten while it is hashed never puts a wrong digest in the cache', async (t) => {
  raced ??= race(t);
  const r = await raced;
  t.deepEqual(r.otherErrors, [], 'every failure is a CONTEXT "changed" error');
  t.deepEqual(r.mismatches, [], 'for every build that passed, the cache key and the layer agree');
  t.deepEqual(r.staleStatEntries, [], 'no stat cache entry disagrees with its file');
  t.true(r.built > 0, 'some builds got through between bursts (else the agreement check proved nothing)');
  t.true(r.refused > 0, 'some builds met the writer (else nothing raced)');
});

// A regression test: when a streamed file (over 1 MiB) changed during the layer write, writeBody
// once threw before awaiting the `done` promise of its tar entry, which then rejected with no
// handler — an unhandled rejection after the build had already failed (fatal to a process that
// treats them as such). The race child counts unhandled rejections across all its builds.
test.serial('a file changing during the layer write leaves no unhandled rejection', async (t) => {
  raced ??= race(t);
  const r = await raced;
  t.true(r.refused > 0, 'the writer met the build at least once (else nothing was tested)');
  t.deepEqual(r.unhandled, []);
});

/** The uid/gid of an unprivileged user for the test, made with useradd when we are root. */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = 'lading-test';
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
  } catch {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'ignore' });
    } catch {
      // Another test process made it at the same moment.
    }
  }
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

test('unreadable files and folders: a clear CONTEXT error naming the file (as an unprivileged user)', async (t) => {
  const user = unprivilegedUser();
  const root = await tempDir(t, 'lading-unreadable-');
  const ctx = path.join(root, 'ctx');
  await fs.mkdir(ctx);
  await fs.writeFile(path.join(ctx, 'ok.txt'), 'ok');
  await fs.writeFile(path.join(ctx, 'secret.txt'), 'no');
  await fs.mkdir(path.join(ctx, 'closed'));
  await fs.writeFile(path.join(ctx, 'closed', 'inside'), 'x');
  await fs.chmod(root, 0o755);
  await fs.chmod(path.join(ctx, 'secret.txt'), 0o000);
  await fs.chmod(path.join(ctx, 'closed'), 0o000);
  const cache = path.join(root, 'cache');
  await fs.mkdir(cache);
  const cases = [
    { dockerfile: 'FROM scratch\nCOPY secret.txt /s\n', file: path.join(ctx, 'secret.txt'), what: /cannot read .*secret\.txt: permission denied/ },
    { dockerfile: 'FROM scratch\nCOPY . /all/\n', file: path.join(ctx, 'closed'), what: /cannot read folder .*closed: permission denied/ },
  ];
  if (user) await fs.chown(cache, user.uid, user.gid);
  for (const c of cases) {
    const dockerfile = path.join(root, `Dockerfile-${cases.indexOf(c)}`);
    await fs.writeFile(dockerfile, c.dockerfile);
    await fs.chmod(dockerfile, 0o644);
    const options = { context: ctx, file: dockerfile, cacheDir: cache };
    const r = user
      ? await buildInChild(options, {}, ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'])
      : await buildInChild(options);
    t.false(r.ok, c.dockerfile);
    t.is(r.code, 'CONTEXT', r.message);
    t.regex(r.message ?? '', c.what);
  }
  // Readable again, the same builds work (as that user too).
  await fs.chmod(path.join(ctx, 'secret.txt'), 0o644);
  await fs.chmod(path.join(ctx, 'closed'), 0o755);
  const r = user
    ? await buildInChild({ context: ctx, file: path.join(root, 'Dockerfile-1'), cacheDir: cache }, {}, ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups'])
    : await buildInChild({ context: ctx, file: path.join(root, 'Dockerfile-1'), cacheDir: cache });
  t.true(r.ok, r.message);
  if (!user) t.log('not root: ran as the current user');
  await fs.chmod(root, 0o700);
});
