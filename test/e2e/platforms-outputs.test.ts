/**
 * Multi-platform images and every output: a two-platform build onto a two-platform base in the
 * harness registry, OCI folder and archive, docker tarball, local root file system, zstd,
 * annotations, and the same digests whatever the output.
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

const test = testNeeding(['docker-registry', 'skopeo', 'umoci', 'zstd'], 'platforms and outputs') as TestFn<RegistryBaseContext>;

registryWithBase(test, async () => `${(await busyboxIndex()).layoutDir}:latest`, 'base/busybox-multi:1');

interface RawIndex {
  mediaType: string;
  manifests: { digest: string; platform: { os: string; architecture: string }; annotations?: Record<string, string> }[];
  annotations?: Record<string, string>;
}

test('a two-platform build onto a two-platform base: one index, each manifest on its own base layers, skopeo copies it all', async (t) => {
  const { registry, base } = t.context;
  const p = await writeProject(await tempDir(t), {
    Dockerfile: `FROM ${base}\nARG TARGETARCH\nCOPY app.txt /app.txt\nRUN_FREE\nLABEL arch=$TARGETARCH\n`.replace('RUN_FREE\n', ''),
    'app.txt': 'same for every platform',
  });
  const tag = `${registry.host}/team/multi:1`;
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--platform', 'linux/amd64,linux/arm64', '-t', tag, '--push', '--sbom=false', '--provenance=false', '--annotation', 'index:org.example.index=yes', '--annotation', 'org.example.each=yes']);
  t.is(r.code, 0, r.stderr);
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`], { encoding: 'utf8' })) as RawIndex;
  t.is(raw.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.is(raw.manifests.length, 2);
  t.deepEqual(raw.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ['linux/amd64', 'linux/arm64']);
  t.is(raw.annotations?.['org.example.index'], 'yes');
  t.is(r.stdout.trim(), `sha256:${execFileSync('sh', ['-c', `skopeo inspect --raw --tls-verify=false docker://${tag} | sha256sum`], { encoding: 'utf8' }).split(' ')[0]}`);

  const baseRaw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${base}`], { encoding: 'utf8' })) as RawIndex;
  const layersOf = (ref: string): string[] =>
    (JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
  const manifestAnn = (ref: string): Record<string, string> =>
    (JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as { annotations: Record<string, string> }).annotations;
  const appLayers: string[] = [];
  for (const [i, m] of raw.manifests.entries()) {
    const ours = layersOf(`${registry.host}/team/multi@${m.digest}`);
    const theirs = layersOf(`${registry.host}/base/busybox-multi@${baseRaw.manifests[i]!.digest}`);
    t.deepEqual(ours.slice(0, theirs.length), theirs, `${m.platform.architecture} sits on its own base layers`);
    t.is(ours.length, theirs.length + 1);
    appLayers.push(ours.at(-1)!);
    const ann = manifestAnn(`${registry.host}/team/multi@${m.digest}`);
    t.is(ann['org.example.each'], 'yes');
    t.is(ann['org.opencontainers.image.base.name'], base);
  }
  t.is(appLayers[0], appLayers[1], 'the COPY layer does not depend on the platform and is shared');
  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${registry.host}/team/multi@${raw.manifests[1]!.digest}`], { encoding: 'utf8' })) as { architecture: string; config: { Labels: Record<string, string> } };
  t.is(config.architecture, 'arm64');
  t.is(config.config.Labels.arch, 'arm64');
  const dir = await tempDir(t);
  execFileSync('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${tag}`, `oci:${path.join(dir, 'copy')}:x`], { stdio: 'pipe' });
  t.pass();
});

test('a platform the base lacks is an error naming both, never a smaller index', async (t) => {
  const { base } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'a' });
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--platform', 'linux/amd64,linux/riscv64']);
  t.is(r.code, 1);
  t.regex(r.stderr, /busybox-multi:1.*has no image for linux\/riscv64 \(it has linux\/amd64, linux\/arm64\)/);
});

test('OCI folder, OCI archive and registry give the same digest; skopeo reads the archive', async (t) => {
  const { registry, base } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'a' });
  const dir = await tempDir(t);
  const tag = `${registry.host}/team/same:1`;
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--platform', 'linux/arm64,linux/amd64', '-t', tag, '--push', '--sbom=false', '--provenance=false', '-o', `type=oci,dest=${path.join(dir, 'layout')}`, '-o', `type=oci,dest=${path.join(dir, 'image.tar')}`, '--iidfile', path.join(dir, 'iid'), '--metadata-file', path.join(dir, 'meta.json')]);
  t.is(r.code, 0, r.stderr);
  const digest = r.stdout.trim();
  t.is(await fs.readFile(path.join(dir, 'iid'), 'utf8'), digest);
  const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')) as {
    'containerimage.digest': string;
    'containerimage.descriptor': { mediaType: string; digest: string; size: number };
    'image.name': string;
    'lading.platforms': { platform: string; digest: string }[];
  };
  t.is(meta['containerimage.digest'], digest);
  t.is(meta['image.name'], tag);
  t.is(meta['containerimage.descriptor'].digest, digest);
  t.is(meta['containerimage.descriptor'].mediaType, 'application/vnd.oci.image.index.v1+json');
  t.deepEqual(meta['lading.platforms'].map((x) => x.platform), ['linux/arm64', 'linux/amd64']);
  const index = JSON.parse(await fs.readFile(path.join(dir, 'layout', 'index.json'), 'utf8')) as RawIndex;
  t.is(index.manifests[0]!.digest, digest);
  const imageIndex = JSON.parse(await fs.readFile(path.join(dir, 'layout', 'blobs', 'sha256', digest.slice(7)), 'utf8')) as RawIndex;
  t.deepEqual(meta['lading.platforms'].map((x) => x.digest), imageIndex.manifests.map((m) => m.digest), 'each platform entry names its manifest in the index');
  t.is(meta['containerimage.descriptor'].size, (await fs.stat(path.join(dir, 'layout', 'blobs', 'sha256', digest.slice(7)))).size);
  const archiveRaw = execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${path.join(dir, 'image.tar')}`]);
  const archive = JSON.parse(archiveRaw.toString('utf8')) as RawIndex;
  t.is(archive.manifests.length, 2);
  t.is(`sha256:${createHash('sha256').update(archiveRaw).digest('hex')}`, digest, 'the archive holds the same index');
  const fromRegistry = execFileSync('sh', ['-c', `skopeo inspect --raw --tls-verify=false docker://${tag} | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
  t.is(`sha256:${fromRegistry}`, digest);
});

test('docker tarball (one platform) has docker save\'s entries; several platforms are refused clearly', async (t) => {
  const bb = await busyboxImage();
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nCOPY a /a\n', a: 'a' });
  const file = path.join(await tempDir(t), 'img.tar');
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '-o', `type=docker,dest=${file}`, '-t', 'app:1']);
  t.is(r.code, 0, r.stderr);
  const names = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
  for (const n of ['manifest.json', 'repositories', 'index.json', 'oci-layout']) t.true(names.includes(n), n);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as { Config: string; Layers: string[]; RepoTags: string[] }[];
  t.deepEqual(manifest[0]!.RepoTags, ['app:1']);
  t.is(manifest[0]!.Layers.length, 2);
  const config = JSON.parse(execFileSync('tar', ['-xOf', file, manifest[0]!.Config], { encoding: 'utf8' })) as { rootfs: { diff_ids: string[] } };
  t.is(config.rootfs.diff_ids.length, 2);
  const repos = JSON.parse(execFileSync('tar', ['-xOf', file, 'repositories'], { encoding: 'utf8' })) as Record<string, Record<string, string>>;
  t.is(repos.app!['1'], config.rootfs.diff_ids[1]!.slice(7));
  const multi = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--platform', 'linux/amd64,linux/arm64', '-o', `type=docker,dest=${file}2`]);
  t.is(multi.code, 2);
  t.regex(multi.stderr, /type=docker holds one platform/);
});

test('the local output equals what umoci unpack gives for the same image', async (t) => {
  const bb = await busyboxImage();
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM busybox\nCOPY --chown=1000:1000 app/ /app/\nCOPY --chmod=0700 secret.sh /usr/local/bin/\n',
    'app/x.txt': 'x',
    'app/sub/y.txt': 'y',
    'secret.sh': '#!/bin/sh\n',
  });
  const dir = await tempDir(t);
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '-o', `type=local,dest=${path.join(dir, 'local')}`, '-o', `type=oci,dest=${path.join(dir, 'oci')}`, '-t', 'x']);
  t.is(r.code, 0, r.stderr);
  execFileSync('umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:x`, path.join(dir, 'bundle')], { stdio: 'pipe' });
  const listing = (root: string): string =>
    execFileSync('find', ['.', '-mindepth', '1', '-printf', '%y %m %U:%G %s %p -> %l\\n'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => (l.startsWith('d ') ? l.replace(/^(d \d+ \d+:\d+) \d+/, '$1 -') : l))
      .sort()
      .join('\n');
  t.is(listing(path.join(dir, 'local')), listing(path.join(dir, 'bundle', 'rootfs')));
});

test('zstd layers: skopeo copies them, zstd and tar read them, umoci 0.4.7 refuses them (documented); a zstd image can be a base', async (t) => {
  const bb = await busyboxImage();
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nCOPY a /a\n', a: 'zstd please' });
  const dir = await tempDir(t);
  const out = path.join(dir, 'oci');
  const r = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--compression', 'zstd', '-o', `type=oci,dest=${out}`, '-t', 'z']);
  t.is(r.code, 0, r.stderr);
  const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${out}:z`], { encoding: 'utf8' })) as { layers: { mediaType: string }[] };
  t.is(manifest.layers.at(-1)!.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  execFileSync('skopeo', ['copy', `oci:${out}:z`, `oci:${path.join(dir, 'copied')}:z`], { stdio: 'pipe' });
  const layerDigest = (JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${out}:z`], { encoding: 'utf8' })) as { layers: { digest: string }[] }).layers.at(-1)!.digest;
  const blob = path.join(out, 'blobs', 'sha256', layerDigest.slice(7));
  t.is(execFileSync('sh', ['-c', `zstd -dc ${blob} | tar -xO a`], { encoding: 'utf8' }), 'zstd please');
  // umoci 0.4.7 (Debian 12) predates zstd support; docs/outputs.md says so.
  const umoci = await import('node:child_process').then((cp) => cp.spawnSync('umoci', ['unpack', '--rootless', '--image', `${out}:z`, path.join(dir, 'bundle')], { encoding: 'utf8' }));
  t.regex(umoci.stderr, /not correct mediatype: application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/);
  // Our local output reads zstd layers.
  const local = path.join(dir, 'local');
  const r3 = await runCli(['build', p.context, '--cache-dir', p.cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--compression', 'zstd', '-o', `type=local,dest=${local}`, '-q']);
  t.is(r3.code, 0, r3.stderr);
  t.is(await fs.readFile(path.join(local, 'a'), 'utf8'), 'zstd please');
  // Our own image with zstd layers as a base: COPY into it reads the zstd layer's index.
  const q = await writeProject(await tempDir(t), { Dockerfile: 'FROM zbase\nCOPY b /b\n', b: 'b' });
  const r2 = await runCli(['build', q.context, '--cache-dir', q.cache, '--build-context', `zbase=oci-layout://${out}:z`, '-q']);
  t.is(r2.code, 0, r2.stderr);
});
