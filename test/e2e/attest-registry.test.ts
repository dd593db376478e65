/**
 * Attestations through a real registry (CNCF Distribution 2.8, which has no referrers API): the
 * BuildKit index layout read by skopeo, the referrers fallback tag schema, `lading sbom`,
 * `lading provenance` and `lading attest verify` against good and tampered images.
 */
import { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import { canonicalBytes } from '../../src/image/json.ts';
import { sha256 } from '../../src/image/digest.ts';
import { assembleImage } from '../../src/image/mutate.ts';
import type { Image } from '../../src/image/image.ts';
import type { Descriptor, Index, Manifest } from '../../src/image/types.ts';
import { busyboxImage } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { writeProject, type Project } from '../helpers/build.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['docker-registry', 'skopeo'], 'attestations in a registry') as TestFn<{ registry: RunningRegistry }>;
const ENV = { SOURCE_DATE_EPOCH: '1700000000' };

test.before(async (t) => {
  t.context = { registry: await startRegistry() };
});

test.after.always(async (t) => {
  await t.context.registry?.stop();
});

interface Statement {
  subject: { name?: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

function skopeoRaw<T = Index & Manifest>(ref: string): T {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as T;
}

async function app(t: Parameters<typeof tempDir>[0], dockerfile = 'FROM busybox\nCOPY app.txt /srv/app.txt\n'): Promise<Project> {
  return writeProject(await tempDir(t), { Dockerfile: dockerfile, 'app.txt': 'app' });
}

async function buildArgs(p: Project, ...rest: string[]): Promise<string[]> {
  const bb = await busyboxImage();
  return ['build', p.context, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--cache-dir', p.cache, '-q', ...rest];
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('--push attaches an SBOM and min provenance by default in BuildKit layout; skopeo reads the index and copies it whole', async (t) => {
  const { registry } = t.context;
  const p = await app(t);
  const tag = `${registry.host}/att/app:1`;
  const r = await runCli(await buildArgs(p, '-t', tag, '--push'), { env: ENV });
  t.is(r.code, 0, r.stderr);
  const digest = r.stdout.trim();

  const index = skopeoRaw(tag);
  t.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.is(sha256(canonicalBytes(index)), digest);
  t.is(index.manifests.length, 2);
  const [image, att] = index.manifests as [Descriptor, Descriptor];
  t.deepEqual(image.platform, { architecture: 'amd64', os: 'linux' });
  t.deepEqual(att.platform, { architecture: 'unknown', os: 'unknown' });
  t.deepEqual(att.annotations, { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
  const attManifest = skopeoRaw<Manifest>(`${registry.host}/att/app@${att.digest}`);
  t.deepEqual(
    attManifest.layers.map((l) => [l.mediaType, l.annotations?.['in-toto.io/predicate-type']]),
    [
      ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
      ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v1'],
    ],
  );
  // A runtime's platform choice skips the attestation manifest.
  const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${tag}`], { encoding: 'utf8' })) as { Digest: string; Architecture: string };
  t.is(inspected.Architecture, 'amd64');

  const sbom = await runCli(['sbom', tag]);
  t.is(sbom.code, 0, sbom.stderr);
  const doc = JSON.parse(sbom.stdout) as { spdxVersion: string; name: string };
  t.is(doc.spdxVersion, 'SPDX-2.3');
  t.is(doc.name, image.digest);
  const provenance = await runCli(['provenance', tag]);
  t.is(provenance.code, 0, provenance.stderr);
  const prov = JSON.parse(provenance.stdout) as { buildDefinition: { externalParameters: Record<string, unknown> }; runDetails: { builder: { id: string } } };
  t.is(prov.runDetails.builder.id, 'https://lading.dev/builders/cli/v1');
  t.false('buildArgs' in prov.buildDefinition.externalParameters, 'the default is min provenance');
  const verify = await runCli(['attest', 'verify', tag]);
  t.is(verify.code, 0, verify.stderr);
  t.is(verify.stdout.trim(), digest);

  // skopeo copies the whole index (attestation manifests included); lading verifies the copy.
  const dir = path.join(p.dir, 'copied');
  execFileSync('skopeo', ['copy', '--all', '--src-tls-verify=false', '--preserve-digests', `docker://${tag}`, `oci:${dir}:copied`], { stdio: 'ignore' });
  const copied = await runCli(['attest', 'verify', `oci:${dir}:copied`]);
  t.is(copied.code, 0, copied.stderr);

  // The same build from a fresh cache, under another name, pushes the same index: attestations
  // describe the digest, not the tags.
  const again = await runCli(await buildArgs({ ...p, cache: path.join(p.dir, 'cache2') }, '-t', `${registry.host}/att/other:2`, '--push'), { env: ENV });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout.trim(), digest);
});

test('--sbom=false --provenance=false pushes the plain image', async (t) => {
  const { registry } = t.context;
  const p = await app(t);
  const tag = `${registry.host}/att/plain:1`;
  const r = await runCli(await buildArgs(p, '-t', tag, '--push', '--sbom=false', '--provenance=false'), { env: ENV });
  t.is(r.code, 0, r.stderr);
  t.is(skopeoRaw(tag).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const sbom = await runCli(['sbom', tag]);
  t.is(sbom.code, 1);
  t.regex(sbom.stderr, /no SBOM is attached/);
});

test('attest verify fails on a pushed attestation whose subject digest was altered', async (t) => {
  const { registry } = t.context;
  const p = await app(t);
  const tag = `${registry.host}/att/tamper:1`;
  const r = await runCli(await buildArgs(p, '-t', tag, '--push', '--provenance=max'), { env: ENV });
  t.is(r.code, 0, r.stderr);

  const client = new RegistryClient();
  t.teardown(() => client.close());
  const index = (await client.manifest(tag)).doc as Index;
  const attDesc = index.manifests[1]!;
  const att = (await client.manifest(`${registry.host}/att/tamper@${attDesc.digest}`)).doc as Manifest;
  const statement = JSON.parse((await client.blob(tag, att.layers[1]!)).toString('utf8')) as Statement;
  t.is(statement.predicateType, 'https://slsa.dev/provenance/v1');
  statement.subject[0]!.digest.sha256 = 'e'.repeat(64);
  const bytes = canonicalBytes(statement);
  const blobs = new Map<string, Buffer>([[sha256(bytes), bytes]]);
  const sbomBytes = await client.blob(tag, att.layers[0]!);
  blobs.set(att.layers[0]!.digest, sbomBytes);
  const layers = [
    { ...att.layers[0]!, diffID: att.layers[0]!.digest },
    { ...att.layers[1]!, digest: sha256(bytes), size: bytes.length, diffID: sha256(bytes) },
  ];
  const forged: Image = assembleImage({
    config: { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [] } },
    layers,
    format: 'oci',
    blobs: { open: async (d) => Readable.from([blobs.get(d.digest)!]), read: async (d) => blobs.get(d.digest)! },
  });
  const tamperedIndex: Index = { ...index, manifests: [index.manifests[0]!, { ...attDesc, digest: forged.digest, size: forged.manifestBytes.length }] };
  const indexBytes = canonicalBytes(tamperedIndex);
  await client.pushImage({ index: tamperedIndex, indexBytes, digest: sha256(indexBytes), images: [forged] }, [parseReference(`${registry.host}/att/tamper:forged`)]);

  const good = await runCli(['attest', 'verify', tag]);
  t.is(good.code, 0, good.stderr);
  const bad = await runCli(['attest', 'verify', `${registry.host}/att/tamper:forged`]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, new RegExp(`names subject sha256:e{64}, but it is attached to image ${index.manifests[0]!.digest}`));
  t.regex(bad.stderr, /do not verify: 1 problem/);
});

test('--attest-as referrers on Distribution 2.8: the fallback tag sha256-<hex> lists them, lading sbom finds them, verify catches a forged one', async (t) => {
  const { registry } = t.context;
  const p = await app(t, 'FROM scratch\nARG TARGETARCH\nCOPY app.txt /app-$TARGETARCH.txt\n');
  const tag = `${registry.host}/att/ref:1`;
  const args = await buildArgs(p, '-t', tag, '--push', '--attest-as', 'referrers', '--platform', 'linux/amd64,linux/arm64');
  const r = await runCli(args, { env: ENV });
  t.is(r.code, 0, r.stderr);
  const index = skopeoRaw(tag);
  t.is(index.manifests.length, 2, 'referrers leave the index as it was');
  t.is(r.stdout.trim(), sha256(canonicalBytes(index)));

  // Distribution 2.8 has no referrers API, so the fallback tag holds each image's referrers.
  t.is(await getStatus(`${registry.url}/v2/att/ref/referrers/${index.manifests[0]!.digest}`), 404);
  for (const image of index.manifests) {
    const fallback = skopeoRaw(`${registry.host}/att/ref:sha256-${image.digest.slice(7)}`);
    t.is(fallback.mediaType, 'application/vnd.oci.image.index.v1+json');
    t.deepEqual(fallback.manifests.map((d) => d.artifactType).sort(), ['application/spdx+json', 'application/vnd.in-toto+json']);
    for (const d of fallback.manifests) {
      const artifact = skopeoRaw<Manifest>(`${registry.host}/att/ref@${d.digest}`);
      t.is(artifact.subject?.digest, image.digest);
      t.is(d.annotations?.['in-toto.io/predicate-type'], artifact.layers[0]!.annotations?.['in-toto.io/predicate-type']);
    }
  }

  const sbom = await runCli(['sbom', tag]);
  t.is(sbom.code, 0, sbom.stderr);
  t.deepEqual(Object.keys(JSON.parse(sbom.stdout) as Record<string, unknown>), ['linux/amd64', 'linux/arm64']);
  const arm = await runCli(['sbom', tag, '--platform', 'linux/arm64', '--statement']);
  t.is(arm.code, 0, arm.stderr);
  t.is((JSON.parse(arm.stdout) as Statement).subject[0]!.digest.sha256, index.manifests[1]!.digest.slice(7));
  const verify = await runCli(['attest', 'verify', tag]);
  t.is(verify.code, 0, verify.stderr);
  t.regex(verify.stderr, /verified 4 attestations of 2 images/);

  // Pushing the same build again adds nothing to the fallback indexes.
  const again = await runCli(args, { env: ENV });
  t.is(again.code, 0, again.stderr);
  t.is(skopeoRaw(`${registry.host}/att/ref:sha256-${index.manifests[0]!.digest.slice(7)}`).manifests.length, 2);

  // A referrer about the amd64 image whose statement names another digest: verify fails.
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const subject = index.manifests[0]!;
  const statement = canonicalBytes({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: tag, digest: { sha256: 'd'.repeat(64) } }], predicateType: 'https://slsa.dev/provenance/v1', predicate: {} });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.in-toto+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
    layers: [{ mediaType: 'application/vnd.in-toto+json', digest: sha256(statement), size: statement.length, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  };
  const manifestBytes = canonicalBytes(manifest);
  const forged: Image = {
    manifest,
    manifestBytes,
    digest: sha256(manifestBytes),
    config: { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } },
    configBytes: Buffer.from('{}'),
    blobs: { open: async () => Readable.from([statement]), read: async () => statement },
  };
  const pushed = await client.pushReferrer(tag, forged);
  t.is(pushed.via, 'tag');
  t.is(skopeoRaw(`${registry.host}/att/ref:sha256-${subject.digest.slice(7)}`).manifests.length, 3);
  const bad = await runCli(['attest', 'verify', tag]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /names subject .* sha256:d{64}, but it is attached to image/);
});

test('lading push of an OCI folder with attestations pushes its attestation manifests too', async (t) => {
  const { registry } = t.context;
  const p = await app(t);
  const out = path.join(p.dir, 'out');
  const built = await runCli(await buildArgs(p, '-t', 'app', '--sbom', '--provenance=min', '-o', `type=oci,dest=${out}`), { env: ENV });
  t.is(built.code, 0, built.stderr);
  const tag = `${registry.host}/att/pushed:1`;
  const pushed = await runCli(['push', `${out}:app`, tag, '-q']);
  t.is(pushed.code, 0, pushed.stderr);
  t.is(pushed.stdout.trim(), built.stdout.trim());
  t.is(skopeoRaw(tag).manifests.length, 2);
  const verify = await runCli(['attest', 'verify', tag]);
  t.is(verify.code, 0, verify.stderr);
});
