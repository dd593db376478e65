/**
 * The options that shape an image rather than build it: `--format docker` (one platform and a
 * manifest list), `--label`, `--annotate-vcs`, the base image annotations, `--compression`
 * uncompressed and `--compression-level`, and a `docker load` tarball that podman loads.
 */
import { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxImage, busyboxIndex } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { registryWithBase, type RegistryBaseContext } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { writeProject } from '../helpers/build.ts';

const test = testNeeding(['docker-registry', 'skopeo', 'podman', 'git', 'tar'], 'image options') as TestFn<RegistryBaseContext>;

registryWithBase(test, async () => `${(await busyboxIndex()).layoutDir}:latest`, 'base/busybox-multi:1');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}
interface Manifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  manifests?: Descriptor[];
  annotations?: Record<string, string>;
}

/** Reads blobs of an OCI layout folder. */
function layout(dir: string) {
  const blob = (digest: string) => fs.readFile(path.join(dir, 'blobs', 'sha256', digest.slice(7)));
  const json = async <T>(digest: string) => JSON.parse((await blob(digest)).toString('utf8')) as T;
  return {
    blob,
    json,
    /** The document the layout's single entry points at, with its descriptor. */
    async top(): Promise<{ descriptor: Descriptor; doc: Manifest }> {
      const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
      const descriptor = index.manifests[0]!;
      return { descriptor, doc: await json<Manifest>(descriptor.digest) };
    },
  };
}

async function build(t: Parameters<typeof tempDir>[0], context: string, cache: string, args: string[], env?: NodeJS.ProcessEnv) {
  const bb = await busyboxImage();
  const out = path.join(await tempDir(t), 'out');
  const r = await runCli(['build', context, '--cache-dir', cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '-o', `type=oci,dest=${out}`, ...args], env ? { env } : {});
  return { ...r, out, layout: layout(out) };
}

const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};

test('--format docker: Docker media types for one platform and a manifest list for two; skopeo reads both', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${t.context.base}\nCOPY a /a\n`, a: 'a' });
  const one = await build(t, p.context, p.cache, ['--format', 'docker', '--platform', 'linux/amd64']);
  t.is(one.code, 0, one.stderr);
  const { doc } = await one.layout.top();
  t.is(doc.mediaType, DOCKER.manifest);
  t.is(doc.config.mediaType, DOCKER.config);
  t.true(doc.layers.length >= 2);
  for (const l of doc.layers) t.is(l.mediaType, DOCKER.layer);
  const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${one.out}`], { encoding: 'utf8' })) as Manifest;
  t.is(inspected.mediaType, DOCKER.manifest);

  const two = await build(t, p.context, p.cache, ['--format', 'docker', '--platform', 'linux/amd64,linux/arm64']);
  t.is(two.code, 0, two.stderr);
  const list = await two.layout.top();
  t.is(list.doc.mediaType, DOCKER.list);
  t.deepEqual(list.doc.manifests!.map((m) => `${m.platform!.os}/${m.platform!.architecture}`).sort(), ['linux/amd64', 'linux/arm64']);
  for (const m of list.doc.manifests!) {
    t.is(m.mediaType, DOCKER.manifest);
    t.is((await two.layout.json<Manifest>(m.digest)).mediaType, DOCKER.manifest);
  }
});

test('--label lands in the config (over a LABEL of the same key); the base annotations name a base skopeo can fetch', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${t.context.base}\nLABEL team=old keep=yes\nCOPY a /a\n`, a: 'a' });
  const r = await build(t, p.context, p.cache, ['--label', 'team=platform', '--label', 'tier=web', '--platform', 'linux/amd64']);
  t.is(r.code, 0, r.stderr);
  const { doc } = await r.layout.top();
  const config = await r.layout.json<{ config: { Labels: Record<string, string> } }>(doc.config.digest);
  t.deepEqual(config.config.Labels, { team: 'platform', keep: 'yes', tier: 'web' });
  const name = doc.annotations?.['org.opencontainers.image.base.name'];
  const digest = doc.annotations?.['org.opencontainers.image.base.digest'];
  t.is(name, t.context.base);
  if (digest === undefined) return t.fail('no org.opencontainers.image.base.digest');
  t.regex(digest, /^sha256:[0-9a-f]{64}$/);
  const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${t.context.base.replace(/:[^:/]+$/, '')}@${digest}`]);
  t.is(`sha256:${createHash('sha256').update(raw).digest('hex')}`, digest, 'the base digest names a manifest the registry serves');
});

test('--annotate-vcs: source (credentials stripped), revision and created from SOURCE_DATE_EPOCH', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nCOPY a /a\n', a: 'a' });
  const git = (...args: string[]) => execFileSync('git', ['-C', p.context, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' } }).trim();
  git('init', '-q', '-b', 'main');
  git('remote', 'add', 'origin', 'https://builder:s3cret-token@git.example.com/org/app.git');
  git('add', '-A');
  git('commit', '-q', '-m', 'first');
  const revision = git('rev-parse', 'HEAD');
  const r = await build(t, p.context, p.cache, ['--annotate-vcs'], { SOURCE_DATE_EPOCH: '1700000000' });
  t.is(r.code, 0, r.stderr);
  const { doc } = await r.layout.top();
  t.is(doc.annotations?.['org.opencontainers.image.source'], 'https://git.example.com/org/app.git');
  t.is(doc.annotations?.['org.opencontainers.image.revision'], revision);
  t.is(doc.annotations?.['org.opencontainers.image.created'], '2023-11-14T22:13:20.000Z');
  t.false(JSON.stringify(doc).includes('s3cret-token'));
});

test('--compression uncompressed writes plain tar layers; --compression-level changes the bytes, never the content', async (t) => {
  const text = Array.from({ length: 4000 }, (_, i) => `line ${i} of a compressible file\n`).join('');
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM scratch\nCOPY big.txt /big.txt\n', 'big.txt': text });
  const plain = await build(t, p.context, p.cache, ['--compression', 'uncompressed']);
  t.is(plain.code, 0, plain.stderr);
  const plainManifest = (await plain.layout.top()).doc;
  t.is(plainManifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  const layerFile = path.join(plain.out, 'blobs', 'sha256', plainManifest.layers[0]!.digest.slice(7));
  t.deepEqual(execFileSync('tar', ['-tf', layerFile], { encoding: 'utf8' }).trim().split('\n'), ['big.txt']);
  const plainConfig = await plain.layout.json<{ rootfs: { diff_ids: string[] } }>(plainManifest.config.digest);
  t.is(plainConfig.rootfs.diff_ids[0], plainManifest.layers[0]!.digest, 'an uncompressed layer is its own diff_id');

  const fast = await build(t, p.context, p.cache, ['--compression', 'gzip', '--compression-level', '1']);
  const best = await build(t, p.context, p.cache, ['--compression', 'gzip', '--compression-level', '9']);
  t.is(fast.code, 0, fast.stderr);
  t.is(best.code, 0, best.stderr);
  const [f, b] = [(await fast.layout.top()).doc, (await best.layout.top()).doc];
  t.is(f.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  t.not(f.layers[0]!.digest, b.layers[0]!.digest);
  t.true(b.layers[0]!.size <= f.layers[0]!.size, `level 9 (${b.layers[0]!.size} B) is no larger than level 1 (${f.layers[0]!.size} B)`);
  const diffIds = await Promise.all([fast, best].map(async (x, i) => (await x.layout.json<{ rootfs: { diff_ids: string[] } }>([f, b][i]!.config.digest)).rootfs.diff_ids));
  t.deepEqual(diffIds[0], plainConfig.rootfs.diff_ids);
  t.deepEqual(diffIds[1], plainConfig.rootfs.diff_ids);
  const bad = await runCli(['build', p.context, '--cache-dir', p.cache, '--compression', 'gzip', '--compression-level', '12']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /level must be 1 to 9/);
});

test('podman loads the docker tarball: its tag, config and layers are the ones we wrote', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nCOPY a /a\nCMD ["cat", "/a"]\n', a: 'from lading\n' });
  const bb = await busyboxImage();
  const dir = await tempDir(t);
  const file = path.join(dir, 'img.tar');
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '-o', `type=docker,dest=${file}`, '-t', 'lading-test/app:1']);
  t.is(r.code, 0, r.stderr);
  const podman = (...args: string[]) => execFileSync('podman', ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot'), '--storage-driver', 'vfs', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.regex(podman('load', '-i', file), /Loaded image: .*lading-test\/app:1/);
  const [inspected] = JSON.parse(podman('image', 'inspect', 'lading-test/app:1')) as { Id: string; Config: { Cmd: string[] }; RootFS: { Layers: string[] } }[];
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as { Config: string }[];
  const config = JSON.parse(execFileSync('tar', ['-xOf', file, manifest[0]!.Config], { encoding: 'utf8' })) as { rootfs: { diff_ids: string[] } };
  t.deepEqual(inspected!.Config.Cmd, ['cat', '/a']);
  t.deepEqual(inspected!.RootFS.Layers, config.rootfs.diff_ids, 'podman verified and kept our layers');
  t.is(`sha256:${inspected!.Id}`, `sha256:${path.basename(manifest[0]!.Config).replace(/^sha256[:/]|\.json$/g, '')}`, 'the image id is our config digest');
});
