/**
 * The README's first promise: fixtures/hello builds into an OCI layout folder with no registry
 * and no daemon, reproducibly, and other tools (umoci, skopeo, the OCI schemas) accept it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build } from '../../src/index.ts';
import { runCli, tempDir, copyFixture } from '../helpers/cli.ts';
import { testNeeding } from '../helpers/tools.ts';
import { validateOci } from '../helpers/oci-validator.ts';

const test = testNeeding(['umoci', 'skopeo'], 'hello end-to-end');

async function walkTimes(dir: string, seconds: number): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await walkTimes(p, seconds);
    if (!entry.isSymbolicLink()) await fs.utimes(p, seconds, seconds);
  }
  await fs.utimes(dir, seconds, seconds);
}

test('two builds in fresh caches from copies with different mtimes give the same digest', async (t) => {
  const dir = await tempDir(t);
  const a = await copyFixture('hello', path.join(dir, 'a'));
  const b = await copyFixture('hello', path.join(dir, 'b'));
  await walkTimes(a, 1_000_000_000);
  await walkTimes(b, 1_700_000_000);
  const one = await build({ context: a, cacheDir: path.join(dir, 'cache-a'), outputs: [{ type: 'oci', dest: path.join(dir, 'out-a') }] });
  const cli = await runCli(['build', b, '--cache-dir', path.join(dir, 'cache-b'), '--output', `type=oci,dest=${path.join(dir, 'out-b')}`]);
  t.is(cli.code, 0, cli.stderr);
  t.is(cli.stdout.trim(), one.digest);
  // The layout folders are byte-identical too.
  const index = (d: string) => fs.readFile(path.join(dir, d, 'index.json'), 'utf8');
  t.is(await index('out-a'), await index('out-b'));
});

test('umoci unpacks our OCI folder to exactly the context (minus .dockerignore), skopeo reads it, the schemas accept it', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'out');
  const cli = await runCli(['build', 'fixtures/hello', '--cache-dir', path.join(dir, 'cache'), '-o', `type=oci,dest=${out}`, '-t', 'hello:1.0']);
  t.is(cli.code, 0, cli.stderr);
  const digest = cli.stdout.trim();
  t.regex(digest, /^sha256:[a-f0-9]{64}$/);

  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:hello:1.0`], { encoding: 'utf8' })) as { Digest: string; Labels: Record<string, string> };
  t.is(inspect.Digest, digest);
  t.is(inspect.Labels['org.opencontainers.image.title'], 'hello');

  const bundle = path.join(dir, 'bundle');
  execFileSync('umoci', ['unpack', '--rootless', '--image', `${out}:hello:1.0`, bundle], { stdio: 'pipe' });
  const listing = (root: string): string =>
    execFileSync('find', ['.', '-mindepth', '1', '-printf', '%y %m %s %p -> %l\\n'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      // Directory sizes depend on the file system, not on the image.
      .map((l) => (l.startsWith('d ') ? l.replace(/^(d \d+) \d+/, '$1 -') : l))
      .sort()
      .join('\n');
  const context = path.join(dir, 'expected');
  await copyFixture('hello', context);
  await fs.rm(path.join(context, 'notes'), { recursive: true });
  await fs.rm(path.join(context, 'build.log'));
  t.is(listing(path.join(bundle, 'rootfs', 'srv', 'hello')), listing(context));
  for (const f of ['bin/hello', 'public/index.html', 'config/app.json']) {
    t.is(await fs.readFile(path.join(bundle, 'rootfs/srv/hello', f), 'utf8'), await fs.readFile(path.join(context, f), 'utf8'));
  }

  // Every document we wrote validates against the OCI schemas.
  const layoutText = await fs.readFile(path.join(out, 'oci-layout'), 'utf8');
  t.deepEqual(validateOci('application/vnd.oci.layout.header.v1+json', layoutText).errors, []);
  const indexText = await fs.readFile(path.join(out, 'index.json'), 'utf8');
  t.deepEqual(validateOci('application/vnd.oci.image.index.v1+json', indexText).errors, []);
  const index = JSON.parse(indexText) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  t.is(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], 'hello:1.0');
  const blob = (d: string) => fs.readFile(path.join(out, 'blobs', 'sha256', d.slice(7)), 'utf8');
  const manifestText = await blob(digest);
  t.deepEqual(validateOci('application/vnd.oci.image.manifest.v1+json', manifestText).errors, []);
  const manifest = JSON.parse(manifestText) as { config: { digest: string } };
  t.deepEqual(validateOci('application/vnd.oci.image.config.v1+json', await blob(manifest.config.digest)).errors, []);
});

test('a docker load tarball lists the config, layers and tags as docker expects', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'hello.tar');
  const cli = await runCli(['build', 'fixtures/hello', '--cache-dir', path.join(dir, 'cache'), '-o', `type=docker,dest=${file}`, '-t', 'hello:1.0', '-t', 'example.com/team/hello']);
  t.is(cli.code, 0, cli.stderr);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  t.is(manifest.length, 1);
  t.deepEqual(manifest[0]!.RepoTags, ['hello:1.0', 'example.com/team/hello:latest']);
  t.is(manifest[0]!.Layers.length, 2);
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n');
  for (const l of [manifest[0]!.Config, ...manifest[0]!.Layers]) t.true(names.includes(l));
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' })) as { Layers: string[] };
  t.is(inspect.Layers.length, 2);
});
