/**
 * The end of the line for a RUN-built image: pushed to the registry, fetched by skopeo, unpacked
 * by umoci into a runtime bundle, and started through bwrap the way the bundle says (entrypoint,
 * cmd, working folder, user, environment) — no lading code between the registry and the run.
 */
import { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { registryWithBase, type RegistryBaseContext } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { writeProject } from '../helpers/build.ts';

const test = testNeeding(['docker-registry', 'skopeo', 'umoci', 'bwrap'], 'a pushed image runs') as TestFn<RegistryBaseContext>;

registryWithBase(test, async () => `${(await busyboxImage()).layoutDir}:latest`, 'base/busybox:1');

interface RuntimeConfig {
  process: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number } };
  root: { path: string };
}

test('built with RUN, pushed, pulled by skopeo, unpacked by umoci: the bundle runs its entrypoint as its user', async (t) => {
  const { registry, base } = t.context;
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      `FROM ${base}`,
      'ENV GREETING=hello',
      'WORKDIR /app',
      `RUN printf '#!/bin/sh\\necho "$GREETING from $(id -un) in $(pwd): $*"\\n' > /app/greet && chmod 755 /app/greet`,
      'USER app',
      'ENTRYPOINT ["/app/greet"]',
      'CMD ["default-arg"]',
      '',
    ].join('\n'),
  });
  const tag = `${registry.host}/team/runs:1`;
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '-t', tag, '--push']);
  t.is(r.code, 0, r.stderr);

  const work = await tempDir(t);
  const layout = path.join(work, 'layout');
  execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${tag}`, `oci:${layout}:runs`], { stdio: 'pipe' });
  const bundle = path.join(work, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:runs`, bundle], { stdio: 'pipe' });
  const config = JSON.parse(await fs.readFile(path.join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
  t.deepEqual(config.process.args, ['/app/greet', 'default-arg']);
  t.is(config.process.cwd, '/app');
  t.is(config.process.user.uid, 1000, 'USER app resolved through the image\'s own /etc/passwd');

  const rootfs = path.join(bundle, config.root.path);
  const env = config.process.env.flatMap((e) => {
    const at = e.indexOf('=');
    return ['--setenv', e.slice(0, at), e.slice(at + 1)];
  });
  const out = execFileSync(
    'bwrap',
    ['--bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--unshare-all', '--unshare-user', '--uid', String(config.process.user.uid), '--gid', String(config.process.user.gid), '--chdir', config.process.cwd, '--clearenv', ...env, ...config.process.args],
    { encoding: 'utf8' },
  );
  t.is(out, 'hello from app in /app: default-arg\n');
});
