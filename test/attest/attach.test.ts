/**
 * Attaching attestations to built images, into OCI layout folders (the registry side is in
 * test/e2e/attest-registry.test.ts): BuildKit's index layout and OCI 1.1 referrers, the
 * documents' schemas, what provenance records, reproducibility, reading back and verifying.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, isLadingError, readAttestations, readProvenance, readSbom, verifyAttestations, type BuildOptions, type BuildResult } from '../../src/index.ts';
import { attestationSettings } from '../../src/api/attestations.ts';
import { attestationBuildOptions, normalizeAttestFlags } from '../../src/cli/attest.ts';
import { canonicalBytes } from '../../src/image/json.ts';
import type { Descriptor, ImageConfig, Index, Manifest } from '../../src/image/types.ts';
import { busyboxImage } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';
import { writeProject, type Project } from '../helpers/build.ts';
import { layoutIndex, layoutJson } from './helpers/attach.ts';
import { errorsOf, schemaValidators } from './helpers/schemas.ts';

const EPOCH = 1_700_000_000;
const SPDX = 'https://spdx.dev/Document';
const SLSA = 'https://slsa.dev/provenance/v1';

interface Statement {
  _type: string;
  subject: { name?: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function project(t: Parameters<typeof tempDir>[0], files: Record<string, string>): Promise<Project> {
  return writeProject(await tempDir(t), files);
}

async function buildTo(p: Project, out: string, options: Partial<BuildOptions> = {}): Promise<BuildResult> {
  const bb = await busyboxImage();
  return build({
    context: p.context,
    cacheDir: p.cache,
    buildContexts: { busybox: `oci-layout://${bb.layoutDir}:latest` },
    outputs: [{ type: 'oci', dest: out }],
    tags: ['app:1'],
    sourceDateEpoch: EPOCH,
    ...options,
  });
}

async function statementOf(dir: string, layer: Descriptor): Promise<Statement> {
  return layoutJson<Statement>(dir, layer.digest);
}

test('BuildKit layout: one platform becomes an index of the image and its attestation manifest', async (t) => {
  const p = await project(t, { Dockerfile: 'FROM scratch\nCOPY hello.txt /hello.txt\n', 'hello.txt': 'hello\n' });
  const out = path.join(p.dir, 'out');
  const r = await buildTo(p, out, { sbom: true, provenance: 'min' });
  const image = r.images[0]!;
  t.truthy(r.index, 'a single-platform build with attestations is an index');
  t.is(r.digest, r.index!.digest);

  const index = await layoutJson<Index>(out, r.digest);
  t.is(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  t.is(index.manifests.length, 2);
  const [imageDesc, attDesc] = index.manifests as [Descriptor, Descriptor];
  t.is(imageDesc.digest, image.digest);
  t.deepEqual(imageDesc.platform, { architecture: 'amd64', os: 'linux' });
  t.deepEqual(attDesc.platform, { architecture: 'unknown', os: 'unknown' });
  t.deepEqual(attDesc.annotations, { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
  t.is(attDesc.mediaType, 'application/vnd.oci.image.manifest.v1+json');

  const att = await layoutJson<Manifest>(out, attDesc.digest);
  t.is(att.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  const config = await layoutJson<ImageConfig>(out, att.config.digest);
  t.is(config.architecture, 'unknown');
  t.is(config.os, 'unknown');
  t.deepEqual(config.rootfs.diff_ids, att.layers.map((l) => l.digest));
  t.deepEqual(att.layers.map((l) => [l.mediaType, l.annotations?.['in-toto.io/predicate-type']]), [
    ['application/vnd.in-toto+json', SPDX],
    ['application/vnd.in-toto+json', SLSA],
  ]);
  for (const layer of att.layers) {
    const s = await statementOf(out, layer);
    t.is(s._type, 'https://in-toto.io/Statement/v1');
    t.is(s.predicateType, layer.annotations?.['in-toto.io/predicate-type'] ?? '(no annotation)');
    t.deepEqual(s.subject, [{ digest: { sha256: image.digest.slice(7) } }], 'the image digest alone: tags do not change attestations');
  }
  // The SBOM describes the image manifest (not the index) and found the scratch image empty.
  const sbom = (await statementOf(out, att.layers[0]!)).predicate as { packages: { primaryPackagePurpose?: string; checksums?: { checksumValue: string }[] }[] };
  t.deepEqual(sbom.packages.map((x) => x.primaryPackagePurpose), ['CONTAINER']);
  t.is(sbom.packages[0]!.checksums?.[0]?.checksumValue, image.digest.slice(7));
});

test('two platforms: every image first, then one attestation manifest per image naming it', async (t) => {
  const p = await project(t, { Dockerfile: 'FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello-$TARGETARCH.txt\n', 'hello.txt': 'hello\n' });
  const out = path.join(p.dir, 'out');
  const r = await buildTo(p, out, { platform: 'linux/amd64,linux/arm64', sbom: true, provenance: 'max' });
  const index = await layoutJson<Index>(out, r.digest);
  t.deepEqual(
    index.manifests.map((d) => `${d.platform!.os}/${d.platform!.architecture}`),
    ['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown'],
  );
  t.deepEqual(index.manifests.slice(0, 2).map((d) => d.digest), r.images.map((i) => i.digest));
  for (const [i, img] of r.images.entries()) {
    const desc = index.manifests[2 + i]!;
    t.is(desc.annotations?.['vnd.docker.reference.digest'], img.digest);
    const att = await layoutJson<Manifest>(out, desc.digest);
    const provenance = await statementOf(out, att.layers.find((l) => l.annotations?.['in-toto.io/predicate-type'] === SLSA)!);
    t.is(provenance.subject[0]!.digest.sha256, img.digest.slice(7));
    const params = (provenance.predicate.buildDefinition as { internalParameters: { platform: string }; externalParameters: { platforms: string[] } });
    t.is(params.internalParameters.platform, img.platform);
    t.deepEqual(params.externalParameters.platforms, ['linux/amd64', 'linux/arm64']);
  }
  const report = await verifyAttestations(`oci:${out}:app:1`);
  t.true(report.ok, report.problems.join('\n'));
  t.is(report.attestations.length, 4);
  const arm = await readSbom(`oci:${out}:app:1`, { platform: 'linux/arm64' });
  t.is(arm.length, 1);
  t.is(arm[0]!.image.digest, r.images[1]!.digest);
});

test('the SBOM validates against SPDX 2.3, the provenance against in-toto Statement v1 and SLSA provenance v1', async (t) => {
  const p = await project(t, {
    Dockerfile: 'FROM busybox\nCOPY package.json /app/node_modules/left-pad/package.json\n',
    'package.json': JSON.stringify({ name: 'left-pad', version: '1.3.0', license: 'WTFPL' }),
  });
  const out = path.join(p.dir, 'out');
  await buildTo(p, out, { sbom: true, provenance: 'max', buildArgs: { A: '1' } });
  const { spdx, statement, provenance } = schemaValidators();
  const [sbomDoc] = await readSbom(`oci:${out}:app:1`);
  t.true(spdx(sbomDoc!.predicate), errorsOf(spdx));
  t.true(statement(sbomDoc!.statement), errorsOf(statement));
  t.true(sbomDoc!.predicate.packages.some((x) => x.name === 'left-pad' && x.versionInfo === '1.3.0'));
  const [prov] = await readProvenance(`oci:${out}:app:1`);
  t.true(statement(prov!.statement), errorsOf(statement));
  t.true(provenance(prov!.predicate), errorsOf(provenance));
});

test('provenance records the Dockerfile, target, arguments (max only), the base image and the context digest', async (t) => {
  const bb = await busyboxImage();
  const dockerfile = 'FROM busybox AS base\nARG GREETING\nCOPY a.txt /a.txt\nFROM base AS final\nLABEL x=y\n';
  const p = await project(t, { 'build/app.Dockerfile': dockerfile, 'a.txt': 'a', 'ignored.log': 'x', '.dockerignore': '*.log\n' });
  const common: Partial<BuildOptions> = { file: path.join(p.context, 'build/app.Dockerfile'), target: 'final', buildArgs: { GREETING: 'hi' } };
  await buildTo(p, path.join(p.dir, 'min'), { ...common, provenance: 'min' });
  await buildTo(p, path.join(p.dir, 'max'), { ...common, provenance: 'max' });
  const [min] = await readProvenance(`oci:${path.join(p.dir, 'min')}:app:1`);
  const [max] = await readProvenance(`oci:${path.join(p.dir, 'max')}:app:1`);
  const ext = min!.predicate.buildDefinition.externalParameters as Record<string, unknown>;
  t.deepEqual(ext.dockerfile, { path: 'build/app.Dockerfile', digest: { sha256: sha256(dockerfile).slice(7) } });
  t.is(ext.target, 'final');
  t.deepEqual(ext.platforms, ['linux/amd64']);
  t.false('buildArgs' in ext, 'min provenance leaves build arguments out');
  t.deepEqual((max!.predicate.buildDefinition.externalParameters as Record<string, unknown>).buildArgs, { GREETING: 'hi' });
  const deps = min!.predicate.buildDefinition.resolvedDependencies!;
  t.deepEqual(deps.find((d) => d.name === 'busybox')?.digest, { sha256: bb.digest.slice(7) });
  t.regex(deps.find((d) => d.name === 'busybox')!.uri!, /^pkg:docker\/busybox@sha256:[0-9a-f]{64}\?platform=linux%2Famd64$/);
  const contextDigest = deps.find((d) => d.name === 'context')!.digest!.sha256;
  t.regex(contextDigest!, /^[0-9a-f]{64}$/);
  const metadata = min!.predicate.runDetails.metadata!;
  t.is(metadata.startedOn, '2023-11-14T22:13:20Z');
  t.is(metadata.finishedOn, '2023-11-14T22:13:20Z');
  t.deepEqual(min!.predicate.runDetails.builder.version, { lading: (await import('../../src/version.ts')).VERSION });

  // The context digest covers what .dockerignore keeps, by content: not ignored files, not times.
  const again = async (name: string): Promise<string> => {
    await buildTo(p, path.join(p.dir, name), { ...common, provenance: 'min' });
    const [doc] = await readProvenance(`oci:${path.join(p.dir, name)}:app:1`);
    return doc!.predicate.buildDefinition.resolvedDependencies!.find((d) => d.name === 'context')!.digest!.sha256!;
  };
  await fs.writeFile(path.join(p.context, 'ignored.log'), 'changed');
  const later = new Date(Date.now() + 60_000);
  await fs.utimes(path.join(p.context, 'a.txt'), later, later);
  t.is(await again('ignored-changed'), contextDigest, 'ignored files and mtimes do not change the context digest');
  await fs.writeFile(path.join(p.context, 'unused.txt'), 'not copied, but sent');
  t.not(await again('file-added'), contextDigest, 'a kept file the build did not read still changes it (the digest is of the context after .dockerignore)');
});

test('a build from a git checkout records the source: remote without credentials, branch, folder, commit and whether it was dirty', async (t) => {
  const p = await project(t, { 'services/app/Dockerfile': 'FROM busybox\nCOPY a.txt /a.txt\n', 'services/app/a.txt': 'a' });
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' };
  const git = (...args: string[]) => execFileSync('git', ['-C', p.context, ...args], { encoding: 'utf8', env }).trim();
  git('init', '-q', '-b', 'main');
  git('remote', 'add', 'origin', 'https://ci:hunter2@git.example.com/team/app.git');
  git('add', '-A');
  git('commit', '-q', '-m', 'first');
  const revision = git('rev-parse', 'HEAD');
  const app = path.join(p.context, 'services', 'app');
  const sourceOf = async (name: string) => {
    await buildTo({ ...p, context: app }, path.join(p.dir, name), { provenance: 'min' });
    const [doc] = await readProvenance(`oci:${path.join(p.dir, name)}:app:1`);
    const ext = doc!.predicate.buildDefinition.externalParameters as { source?: { uri?: string; subdir?: string } };
    return { ext: ext.source, dep: doc!.predicate.buildDefinition.resolvedDependencies!.find((d) => d.name === 'source'), text: JSON.stringify(doc) };
  };
  const clean = await sourceOf('clean');
  t.deepEqual(clean.ext, { uri: 'git+https://git.example.com/team/app.git@refs/heads/main', subdir: 'services/app' });
  t.deepEqual(clean.dep, { name: 'source', uri: 'git+https://git.example.com/team/app.git@refs/heads/main', digest: { gitCommit: revision }, annotations: { dirty: false } });
  t.false(clean.text.includes('hunter2'), 'the credential in the remote URL is not recorded');
  await fs.writeFile(path.join(app, 'a.txt'), 'edited, not committed');
  const dirty = await sourceOf('dirty');
  t.deepEqual(dirty.dep?.annotations, { dirty: true });
  t.is(dirty.dep?.digest?.gitCommit, revision);
});

test('reproducible: two builds from separate caches give identical attestation digests', async (t) => {
  const files = { Dockerfile: 'FROM busybox\nCOPY app.txt /srv/app.txt\n', 'app.txt': 'app' };
  const digests: string[][] = [];
  for (const run of ['one', 'two']) {
    const p = await project(t, files);
    const out = path.join(p.dir, 'out');
    const r = await buildTo(p, out, { sbom: true, provenance: 'max', platform: 'linux/amd64,linux/arm64' });
    const index = await layoutJson<Index>(out, r.digest);
    const atts = index.manifests.filter((d) => d.annotations?.['vnd.docker.reference.type']);
    const layers = (await Promise.all(atts.map((d) => layoutJson<Manifest>(out, d.digest)))).flatMap((m) => m.layers.map((l) => l.digest));
    digests.push([r.digest, ...atts.map((d) => d.digest), ...layers]);
    t.log(run, r.digest);
  }
  t.is(digests[0]!.length, 1 + 2 + 4);
  t.deepEqual(digests[0], digests[1]);
});

test('referrers in an OCI layout: one artifact per statement with the image as subject, listed in index.json', async (t) => {
  const p = await project(t, { Dockerfile: 'FROM busybox\nCOPY app.txt /app.txt\n', 'app.txt': 'x' });
  const out = path.join(p.dir, 'out');
  const r = await buildTo(p, out, { sbom: true, provenance: 'min', attestAs: 'referrers' });
  t.is(r.index, undefined, 'the image stays a single manifest');
  t.is(r.digest, r.images[0]!.digest);
  const entries = (await layoutIndex(out)).manifests;
  t.is(entries.length, 3);
  const referrers = entries.filter((d) => d.annotations?.['org.opencontainers.image.ref.name'] === undefined);
  t.is(referrers.length, 2);
  t.true(referrers.every((d) => d.platform === undefined), 'a referrer is no image of any platform');
  const manifests = await Promise.all(referrers.map((d) => layoutJson<Manifest>(out, d.digest)));
  t.deepEqual(manifests.map((m) => m.artifactType).sort(), ['application/spdx+json', 'application/vnd.in-toto+json']);
  for (const m of manifests) {
    t.deepEqual(m.subject, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: r.digest, size: r.image.manifestBytes.length });
    t.deepEqual(m.config, { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 });
    t.is(m.layers.length, 1);
    t.is(m.layers[0]!.mediaType, 'application/vnd.in-toto+json');
    t.is(m.annotations?.['in-toto.io/predicate-type'], m.layers[0]!.annotations?.['in-toto.io/predicate-type']);
  }
  const sboms = await readSbom(`oci:${out}:app:1`);
  t.is(sboms.length, 1);
  t.is(sboms[0]!.via, 'referrers');
  t.is(sboms[0]!.image.digest, r.digest);
  const report = await verifyAttestations(`oci:${out}`);
  t.true(report.ok, report.problems.join('\n'));
  t.is(report.attestations.length, 2);
});

/** Rewrite one statement of a layout's attestation manifest and the index above it, as an attacker could. */
async function tamperIndexAttestation(out: string, rootDigest: string, edit: (s: Statement, index: Index) => void, editDesc?: (d: Descriptor) => void): Promise<string> {
  const write = async (bytes: Buffer): Promise<string> => {
    const digest = sha256(bytes);
    await fs.writeFile(path.join(out, 'blobs', 'sha256', digest.slice(7)), bytes);
    return digest;
  };
  const index = await layoutJson<Index>(out, rootDigest);
  const attDesc = index.manifests.find((d) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')!;
  const att = await layoutJson<Manifest>(out, attDesc.digest);
  const statement = await layoutJson<Statement>(out, att.layers[0]!.digest);
  edit(statement, index);
  const statementBytes = canonicalBytes(statement);
  att.layers[0] = { ...att.layers[0]!, digest: await write(statementBytes), size: statementBytes.length };
  const attBytes = canonicalBytes(att);
  attDesc.digest = await write(attBytes);
  attDesc.size = attBytes.length;
  editDesc?.(attDesc);
  const indexBytes = canonicalBytes(index);
  const digest = await write(indexBytes);
  const layout = await layoutIndex(out);
  layout.manifests = layout.manifests.map((d) => (d.digest === rootDigest ? { ...d, digest, size: indexBytes.length } : d));
  await fs.writeFile(path.join(out, 'index.json'), canonicalBytes(layout));
  return digest;
}

test('attest verify: a good image passes; a statement about another digest, or a manifest pointing elsewhere, fails', async (t) => {
  const p = await project(t, { Dockerfile: 'FROM busybox\nCOPY app.txt /app.txt\n', 'app.txt': 'x' });
  const out = path.join(p.dir, 'out');
  const r = await buildTo(p, out, { sbom: true, provenance: 'min' });
  const good = await verifyAttestations(`oci:${out}:app:1`);
  t.true(good.ok, good.problems.join('\n'));
  t.is(good.attestations.length, 2);

  const forged = 'f'.repeat(64);
  await tamperIndexAttestation(out, r.digest, (s) => {
    s.subject[0]!.digest.sha256 = forged;
  });
  const bad = await verifyAttestations(`oci:${out}:app:1`);
  t.false(bad.ok);
  t.is(bad.problems.length, 1);
  t.regex(bad.problems[0]!, new RegExp(`names subject sha256:${forged}, but it is attached to image ${r.images[0]!.digest}`));

  // Rebuild, then make the attestation manifest claim to describe a manifest the index lacks.
  await fs.rm(out, { recursive: true });
  await buildTo(p, out, { sbom: true, provenance: 'min' });
  await tamperIndexAttestation(out, r.digest, () => {}, (d) => {
    d.annotations!['vnd.docker.reference.digest'] = `sha256:${forged}`;
  });
  const elsewhere = await verifyAttestations(`oci:${out}:app:1`);
  t.false(elsewhere.ok);
  t.regex(elsewhere.problems.join('\n'), /describes sha256:f+, which is not an image of the index/);

  // Nothing attached at all is not a pass either.
  const plain = path.join(p.dir, 'plain');
  await buildTo(p, plain);
  const none = await verifyAttestations(`oci:${plain}:app:1`);
  t.false(none.ok);
  t.regex(none.problems[0]!, /no attestations are attached/);
});

test('a referrer whose statement names another image fails verification', async (t) => {
  const p = await project(t, { Dockerfile: 'FROM busybox\nCOPY app.txt /app.txt\n', 'app.txt': 'x' });
  const out = path.join(p.dir, 'out');
  await buildTo(p, out, { sbom: false, provenance: 'min', attestAs: 'referrers' });
  const layout = await layoutIndex(out);
  const entry = layout.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === undefined)!;
  const artifact = await layoutJson<Manifest>(out, entry.digest);
  const statement = await layoutJson<Statement>(out, artifact.layers[0]!.digest);
  statement.subject[0]!.digest.sha256 = '0'.repeat(64);
  const bytes = canonicalBytes(statement);
  await fs.writeFile(path.join(out, 'blobs', 'sha256', sha256(bytes).slice(7)), bytes);
  artifact.layers[0] = { ...artifact.layers[0]!, digest: sha256(bytes), size: bytes.length };
  const artifactBytes = canonicalBytes(artifact);
  await fs.writeFile(path.join(out, 'blobs', 'sha256', sha256(artifactBytes).slice(7)), artifactBytes);
  layout.manifests = layout.manifests.map((d) => (d === entry ? { ...d, digest: sha256(artifactBytes), size: artifactBytes.length } : d));
  await fs.writeFile(path.join(out, 'index.json'), canonicalBytes(layout));
  const report = await verifyAttestations(`oci:${out}:app:1`);
  t.false(report.ok);
  t.regex(report.problems.join('\n'), /in referrer sha256:[0-9a-f]+ \(https:\/\/slsa.dev\/provenance\/v1\) names subject sha256:0{64}/);
  const listed = await readAttestations(`oci:${out}:app:1`);
  t.is(listed.attestations[0]!.via, 'referrers');
});

test('defaults follow buildx: attestations with a push, none otherwise unless asked', async (t) => {
  const push: BuildOptions = { context: '.', tags: ['r.example/app:1'] };
  t.deepEqual(attestationSettings(push, [{ type: 'registry' }]), { sbom: true, provenance: 'min', attestAs: 'index' });
  t.is(attestationSettings({ ...push, sbom: false, provenance: false }, [{ type: 'registry' }]), undefined);
  t.is(attestationSettings(push, [{ type: 'oci', dest: 'out' }]), undefined);
  t.deepEqual(attestationSettings({ ...push, sbom: true }, [{ type: 'oci', dest: 'out' }]), { sbom: true, provenance: false, attestAs: 'index' });
  t.is(attestationSettings(push, [{ type: 'registry' }], undefined, { LADING_NO_DEFAULT_ATTESTATIONS: '1' }), undefined, 'as BUILDX_NO_DEFAULT_ATTESTATIONS');
  t.deepEqual(attestationSettings({ ...push, provenance: 'max' }, [{ type: 'registry' }], undefined, { LADING_NO_DEFAULT_ATTESTATIONS: '1' }), { sbom: false, provenance: 'max', attestAs: 'index' });
  t.deepEqual(attestationSettings(push, [{ type: 'registry' }], undefined, { LADING_NO_DEFAULT_ATTESTATIONS: '0' }), { sbom: true, provenance: 'min', attestAs: 'index' });
  const warnings: string[] = [];
  t.is(attestationSettings({ ...push, format: 'docker' }, [{ type: 'registry' }], (w) => warnings.push(w)), undefined);
  t.regex(warnings[0]!, /need OCI media types/);

  const p = await project(t, { Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' });
  const refused = async (options: Partial<BuildOptions>, pattern: RegExp): Promise<void> => {
    const err = await t.throwsAsync(buildTo(p, path.join(p.dir, 'out'), options));
    t.true(isLadingError(err) && err.code === 'USAGE', String(err));
    t.regex(err!.message, pattern);
  };
  await refused({ sbom: true, format: 'docker' }, /cannot be attached to an image with Docker media types/);
  await refused({ sbom: true, outputs: [{ type: 'docker', dest: path.join(p.dir, 'x.tar') }] }, /needs an output that can hold attestations/);
  await refused({ provenance: 'min', attestAs: 'referrers', outputs: [{ type: 'oci', dest: path.join(p.dir, 'x.tar') }] }, /cannot write into the OCI archive/);

  // Without a flag an OCI output gets the plain image, as before.
  const r = await buildTo(p, path.join(p.dir, 'plain'));
  t.is(r.index, undefined);
  t.is(r.digest, r.images[0]!.digest);
});

test('CLI flags: bare --sbom and --provenance mean true, buildx spellings are understood', (t) => {
  t.deepEqual(normalizeAttestFlags(['--sbom', '.', '--provenance', '--', '--sbom']), ['--sbom=true', '.', '--provenance=true', '--', '--sbom']);
  t.deepEqual(attestationBuildOptions({ sbom: 'true', provenance: 'mode=max', 'attest-as': 'referrers' }), { sbom: true, provenance: 'max', attestAs: 'referrers' });
  t.deepEqual(attestationBuildOptions({ sbom: 'false', provenance: 'false' }), { sbom: false, provenance: false });
  t.deepEqual(attestationBuildOptions({ provenance: 'true' }), { provenance: 'min' });
  t.deepEqual(attestationBuildOptions({}), {});
  for (const bad of [{ sbom: 'generator=docker/scout' }, { provenance: 'full' }, { 'attest-as': 'tag' }]) {
    const err = t.throws(() => attestationBuildOptions(bad));
    t.true(isLadingError(err) && err.code === 'USAGE');
  }
});
