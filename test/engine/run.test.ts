/**
 * RUN through the engine: layers from what the step changed, build args visible but never
 * stored, failures with exit code and output, mounts (cache, bind, secret, tmpfs), heredocs,
 * multi-stage builds, and cache hits that never start a sandbox.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { tempDir } from '../helpers/cli.ts';
import { buildProject, stepsMade, writeProject, type BuildRun } from '../helpers/build.ts';
import { testNeeding } from '../helpers/tools.ts';
import { LadingError } from '../../src/index.ts';

const test = testNeeding(['bwrap'], 'RUN in the engine');

async function layerText(run: BuildRun, prefix: string): Promise<string> {
  const step = run.steps.find((s) => s.text.startsWith(prefix));
  if (!step?.layer) throw new Error(`no layer for ${prefix}`);
  const blob = await run.image.blobs.read({ mediaType: 'x', digest: step.layer, size: 0 });
  return zlib.gunzipSync(blob).toString('latin1');
}

async function localOut(t: Parameters<typeof tempDir>[0]): Promise<string> {
  return path.join(await tempDir(t), 'rootfs');
}

test('RUN makes a layer of what it changed; ARGs reach it but not the image config', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM busybox\nARG TOKEN=build-only-value\nENV KEEP=kept\nRUN echo "$TOKEN $KEEP" > /made.txt && rm /etc/group\nCMD ["cat", "/made.txt"]\n',
  });
  const out = await localOut(t);
  const run = await buildProject(p, { outputs: [{ type: 'local', dest: out }] });
  t.is(await fs.readFile(path.join(out, 'made.txt'), 'utf8'), 'build-only-value kept\n');
  await t.throwsAsync(fs.access(path.join(out, 'etc/group')), undefined, 'the deletion became a whiteout');
  const tarText = await layerText(run, 'RUN ');
  t.true(tarText.includes('etc/.wh.group'));
  t.false(JSON.stringify(run.image.config.config).includes('build-only-value'), 'the ARG is not in the config');
  t.deepEqual(run.image.config.config?.Env?.filter((e) => e.startsWith('KEEP')), ['KEEP=kept']);
});

test('a failing RUN names its line, its exit code and its last output lines', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nRUN echo first line; echo "about to fail" >&2; exit 7\n' });
  const err = (await t.throwsAsync(buildProject(p))) as LadingError;
  t.is(err.code, 'RUN_FAILED');
  t.is(err.location?.line, 2);
  t.is(err.details.exitCode, 7);
  t.regex(String(err.details.output), /about to fail/);
});

test('the build-wide network: none leaves RUN only loopback, is in the key, and a step\'s own --network wins; resolv.conf is the host\'s and stays out of the layer', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      'FROM busybox',
      'RUN grep -c : /proc/net/dev > /ifaces-default',
      'RUN --network=default grep -c : /proc/net/dev > /ifaces-own',
      'RUN cat /etc/resolv.conf > /resolv-seen',
      '',
    ].join('\n'),
  });
  const hostInterfaces = (await fs.readFile('/proc/net/dev', 'utf8')).split('\n').filter((l) => l.includes(':')).length;
  const hostResolv = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const shared = await localOut(t);
  const first = await buildProject(p, { outputs: [{ type: 'local', dest: shared }] });
  t.is(Number(await fs.readFile(path.join(shared, 'ifaces-default'), 'utf8')), hostInterfaces);
  t.is(await fs.readFile(path.join(shared, 'resolv-seen'), 'utf8'), hostResolv, 'RUN reads the host resolver configuration');
  for (const step of first.steps.filter((s) => s.text.startsWith('RUN ') && s.layer)) {
    const tarText = await layerText(first, step.text);
    t.false(tarText.includes('etc/resolv.conf'), `${step.text}: the mounted resolv.conf is not in the layer`);
  }

  const isolated = await localOut(t);
  const none = await buildProject(p, { network: 'none', outputs: [{ type: 'local', dest: isolated }] });
  t.is(Number(await fs.readFile(path.join(isolated, 'ifaces-default'), 'utf8')), 1, 'only lo');
  t.is(Number(await fs.readFile(path.join(isolated, 'ifaces-own'), 'utf8')), hostInterfaces, 'RUN --network=default keeps the network');
  const made = stepsMade(none);
  t.true(made.some((text) => text.includes('> /ifaces-default')), 'a different network is a different key: the step ran again');
  t.not(none.digest, first.digest);
});

test('SHELL, USER by name and a bind mount from another stage reach RUN', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      'FROM busybox AS builder',
      'RUN mkdir /built && echo from-builder > /built/x',
      'FROM busybox',
      'RUN mkdir /out && chown app:app /out',
      'SHELL ["/bin/sh", "-xc"]',
      'USER app',
      'RUN id -un > /out/who && id -u >> /out/who',
      'RUN --mount=type=bind,from=builder,source=/built,target=/mnt/b cat /mnt/b/x > /out/bound',
      '',
    ].join('\n'),
  });
  const out = await localOut(t);
  const run = await buildProject(p, { outputs: [{ type: 'local', dest: out }] });
  t.is(await fs.readFile(path.join(out, 'out/who'), 'utf8'), 'app\n1000\n');
  t.is(await fs.readFile(path.join(out, 'out/bound'), 'utf8'), 'from-builder\n');
  await t.throwsAsync(fs.access(path.join(out, 'mnt/b')), undefined, 'the mount point left no trace');
  const traced = run.events.filter((e) => e.type === 'step-output' && e.stream === 'stderr').map((e) => (e.type === 'step-output' ? e.text : '')).join('');
  t.regex(traced, /\+ id -un/, 'the RUN went through SHELL ["/bin/sh", "-xc"] (its trace is on stderr)');
  t.deepEqual(run.image.config.config?.Shell, ['/bin/sh', '-xc']);
  t.is(run.image.config.config?.User, 'app');
});

test('a cached RUN starts no sandbox at all', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nRUN echo hi > /hi\n' });
  const first = await buildProject(p);
  t.true(first.events.some((e) => e.type === 'sandbox'));
  const second = await buildProject(p);
  t.deepEqual(stepsMade(second), []);
  t.false(second.events.some((e) => e.type === 'sandbox'), 'no root file system was made');
  t.is(second.digest, first.digest);
});

test('multi-stage: RUN in a builder, COPY --from into scratch; the image runs its entrypoint', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      'FROM busybox AS build',
      'WORKDIR /src',
      'COPY greet.sh .',
      'RUN mkdir -p /out/bin && cp /bin/busybox /out/bin/ && cp greet.sh /out/bin/greet && chmod 755 /out/bin/greet && ln -s busybox /out/bin/sh',
      'FROM scratch',
      'COPY --from=build /out/bin /bin',
      'ENTRYPOINT ["/bin/greet"]',
    ].join('\n'),
    'greet.sh': '#!/bin/sh\necho "greetings from a scratch image"\n',
  });
  const out = await localOut(t);
  const run = await buildProject(p, { outputs: [{ type: 'local', dest: out }] });
  t.deepEqual(run.image.config.config?.Entrypoint, ['/bin/greet']);
  const printed = execFileSync('bwrap', ['--bind', out, '/', '--proc', '/proc', '--dev', '/dev', '--unshare-all', '/bin/greet'], { encoding: 'utf8' });
  t.is(printed, 'greetings from a scratch image\n');
});

test('mounts: a cache persists between builds, a context bind honours .dockerignore, a secret never lands anywhere', async (t) => {
  const dir = await tempDir(t);
  const secretFile = path.join(dir, 'secret.txt');
  await fs.writeFile(secretFile, 's3cr3t-value-123');
  const p = await writeProject(dir, {
    Dockerfile: [
      'FROM busybox',
      'ARG N=1',
      'RUN --mount=type=cache,target=/var/cache/app echo $N >> /var/cache/app/log && cat /var/cache/app/log | wc -l > /cache-lines',
      'RUN --mount=type=bind,target=/ctx ls /ctx | sort > /ctx-list',
      'RUN --mount=type=secret,id=api,required=true wc -c < /run/secrets/api > /secret-size',
      'RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && ls /scratch > /tmpfs-list',
    ].join('\n'),
    '.dockerignore': 'ignored.txt\n',
    'kept.txt': 'k',
    'ignored.txt': 'must not be visible',
  });
  const out = await localOut(t);
  await buildProject(p, { secrets: { api: { src: secretFile } }, outputs: [{ type: 'local', dest: out }] });
  t.is((await fs.readFile(path.join(out, 'cache-lines'), 'utf8')).trim(), '1');
  t.false((await fs.readFile(path.join(out, 'ctx-list'), 'utf8')).includes('ignored.txt'));
  t.true((await fs.readFile(path.join(out, 'ctx-list'), 'utf8')).includes('kept.txt'));
  t.is((await fs.readFile(path.join(out, 'secret-size'), 'utf8')).trim(), '16');
  t.is((await fs.readFile(path.join(out, 'tmpfs-list'), 'utf8')).trim(), 'f');
  await t.throwsAsync(fs.access(path.join(out, 'run/secrets/api')), undefined, 'the secret mount point left nothing');
  await t.throwsAsync(fs.access(path.join(out, 'scratch/f')));
  const out2 = await localOut(t);
  await buildProject(p, { secrets: { api: { src: secretFile } }, buildArgs: { N: '2' }, outputs: [{ type: 'local', dest: out2 }] });
  t.is((await fs.readFile(path.join(out2, 'cache-lines'), 'utf8')).trim(), '2', 'the cache mount kept the first build\'s line');
  // The secret is in no file of the store (layers, records, history).
  const hits = execFileSync('sh', ['-c', `grep -rl s3cr3t-value-123 ${p.cache} || true`], { encoding: 'utf8' }).trim();
  t.is(hits, '');
  const missing = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=api,required=true true\n' });
  const err = await t.throwsAsync(buildProject(missing));
  t.regex(err!.message, /needs the secret "api"/);
});

test('RUN heredocs: a plain body runs in the shell, a #! body runs as its own script', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM busybox\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\nRUN <<EOF\n#!/bin/sh\necho "$0" > /script-name\nEOF\n',
  });
  const out = await localOut(t);
  await buildProject(p, { outputs: [{ type: 'local', dest: out }] });
  t.is(await fs.readFile(path.join(out, 'one'), 'utf8'), 'one\ntwo\n');
  t.is((await fs.readFile(path.join(out, 'script-name'), 'utf8')).trim(), '/dev/pipes/EOF');
  await t.throwsAsync(fs.access(path.join(out, 'dev/pipes')), undefined, 'the script mount left nothing');
});

test('RUN edge cases: a bind of one file mounts the file; a file replaced by a folder; a step that only passes through /tmp makes no layer', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      'FROM busybox',
      'RUN --mount=type=bind,source=requirements.txt,target=/tmp/req.txt cp /tmp/req.txt /req-copy',
      'RUN mkdir /opt && touch /opt/x',
      'RUN rm /opt/x && mkdir /opt/x',
      'RUN touch /opt/x/y',
      'RUN touch /tmp/scratch && rm /tmp/scratch',
    ].join('\n'),
    'requirements.txt': 'flask==3.0\n',
  });
  const out = await localOut(t);
  const run = await buildProject(p, { outputs: [{ type: 'local', dest: out }] });
  t.is(await fs.readFile(path.join(out, 'req-copy'), 'utf8'), 'flask==3.0\n');
  t.true((await fs.stat(path.join(out, 'opt/x'))).isDirectory());
  t.true((await fs.stat(path.join(out, 'opt/x/y'))).isFile());
  const passing = run.steps.find((s) => s.text.includes('touch /tmp/scratch'))!;
  t.is(passing.layer, undefined, 'only a folder time changed: no layer');
});
