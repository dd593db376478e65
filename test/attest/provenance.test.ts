import test from 'ava';
import { sha256, digestHex } from '../../src/image/digest.ts';
import { VERSION } from '../../src/version.ts';
import { LADING_BUILD_TYPE, generateProvenance, imageDependencyUri, sbomStatement, type ProvenanceInput } from '../../src/attest/provenance.ts';
import { errorsOf, schemaValidators } from './helpers/schemas.ts';

const IMAGE = sha256('image manifest');
const BASE = sha256('base manifest');

function input(over: Partial<ProvenanceInput> = {}): ProvenanceInput {
  return {
    subject: { names: ['registry.example.com/team/app:1.0', 'registry.example.com/team/app:latest'], digest: IMAGE },
    dockerfile: { path: 'docker/Dockerfile', digest: sha256('FROM debian:bookworm\n') },
    target: 'runtime',
    platforms: ['linux/amd64'],
    buildArgs: { VERSION: '1.0', HTTP_PROXY: 'http://proxy:3128' },
    labels: { 'org.opencontainers.image.source': 'https://example.com/app' },
    baseImages: [
      { ref: 'docker.io/library/debian:bookworm', digest: BASE, platform: 'linux/amd64' },
      { ref: 'ghcr.io/acme/tools@' + sha256('tools'), digest: sha256('tools'), platform: 'linux/amd64' },
    ],
    context: { digest: sha256('context') },
    git: { uri: 'https://user:hunter2@example.com/team/app.git', revision: 'a'.repeat(40), dirty: false, ref: 'refs/heads/main', subdir: 'services/app' },
    options: { compression: 'gzip', format: 'oci', cacheDir: '.cache' },
    sourceDateEpoch: 1_700_000_000,
    ...over,
  };
}

function validate(t: import('ava').ExecutionContext, bytes: Buffer): void {
  const { statement, provenance } = schemaValidators();
  const doc = JSON.parse(bytes.toString('utf8')) as { predicate: unknown; predicateType: string };
  t.true(statement(doc), errorsOf(statement));
  t.is(doc.predicateType, 'https://slsa.dev/provenance/v1');
  t.true(provenance(doc.predicate), errorsOf(provenance));
}

test('max mode: a valid in-toto statement whose predicate is valid SLSA provenance v1', (t) => {
  const { document, bytes } = generateProvenance(input(), 'max');
  validate(t, bytes);
  t.deepEqual(document.subject, [
    { name: 'registry.example.com/team/app:1.0', digest: { sha256: digestHex(IMAGE) } },
    { name: 'registry.example.com/team/app:latest', digest: { sha256: digestHex(IMAGE) } },
  ]);
  const def = document.predicate.buildDefinition;
  t.is(def.buildType, LADING_BUILD_TYPE);
  t.deepEqual(def.externalParameters, {
    dockerfile: { path: 'docker/Dockerfile', digest: { sha256: digestHex(sha256('FROM debian:bookworm\n')) } },
    platforms: ['linux/amd64'],
    target: 'runtime',
    source: { uri: 'git+https://example.com/team/app.git@refs/heads/main', subdir: 'services/app' },
    buildArgs: { HTTP_PROXY: 'http://proxy:3128', VERSION: '1.0' },
    labels: { 'org.opencontainers.image.source': 'https://example.com/app' },
  });
  t.deepEqual(def.internalParameters, { compression: 'gzip', format: 'oci', cacheDir: '.cache' });
  t.deepEqual(def.resolvedDependencies, [
    { name: 'docker.io/library/debian:bookworm', uri: 'pkg:docker/library/debian@bookworm?platform=linux%2Famd64&repository_url=docker.io', digest: { sha256: digestHex(BASE) } },
    {
      name: `ghcr.io/acme/tools@${sha256('tools')}`,
      uri: `pkg:docker/acme/tools@${sha256('tools')}?platform=linux%2Famd64&repository_url=ghcr.io`,
      digest: { sha256: digestHex(sha256('tools')) },
    },
    { name: 'context', digest: { sha256: digestHex(sha256('context')) } },
    { name: 'source', uri: 'git+https://example.com/team/app.git@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) }, annotations: { dirty: false } },
  ]);
  t.deepEqual(document.predicate.runDetails.builder, { id: 'https://lading.dev/builders/cli/v1', version: { lading: VERSION } });
  t.is(document.predicate.runDetails.metadata?.startedOn, '2023-11-14T22:13:20Z');
  t.is(document.predicate.runDetails.metadata?.finishedOn, '2023-11-14T22:13:20Z');
  t.false(bytes.toString().includes('hunter2'));
});

test('min mode leaves out build args, labels and lading options', (t) => {
  const { document, bytes } = generateProvenance(input(), 'min');
  validate(t, bytes);
  const def = document.predicate.buildDefinition;
  t.false('buildArgs' in def.externalParameters);
  t.false('labels' in def.externalParameters);
  t.is(def.internalParameters, undefined);
  t.false(bytes.toString().includes('proxy:3128'));
  t.truthy(def.resolvedDependencies?.length);
});

test('reproducible: same inputs, same bytes; the invocation id is derived from the build, not random', (t) => {
  const a = generateProvenance(input(), 'max');
  const b = generateProvenance(input({ baseImages: [...input().baseImages].reverse(), subject: { names: ['registry.example.com/team/app:latest', 'registry.example.com/team/app:1.0'], digest: IMAGE } }), 'max');
  t.true(a.bytes.equals(b.bytes));
  t.regex(a.document.predicate.runDetails.metadata!.invocationId!, /^[0-9a-f]{64}$/);
  const other = generateProvenance(input({ target: 'debug' }), 'max');
  t.not(other.document.predicate.runDetails.metadata!.invocationId, a.document.predicate.runDetails.metadata!.invocationId);
  t.false(a.bytes.includes('\n'));
});

test('not reproducible: times and invocation id come from the run', (t) => {
  const { document, bytes } = generateProvenance(
    input({ sourceDateEpoch: undefined, startedOn: new Date('2024-05-01T10:00:00.123Z'), finishedOn: '2024-05-01T10:01:30Z', invocationId: 'run-42', git: undefined }),
    'min',
  );
  validate(t, bytes);
  t.deepEqual(document.predicate.runDetails.metadata, { invocationId: 'run-42', startedOn: '2024-05-01T10:00:00Z', finishedOn: '2024-05-01T10:01:30Z' });
  t.false('source' in document.predicate.buildDefinition.externalParameters);
  const random = generateProvenance(input({ sourceDateEpoch: undefined }), 'min');
  t.regex(random.document.predicate.runDetails.metadata!.invocationId!, /^[0-9a-f-]{36}$/);
});

test('an unnamed image gets a subject with its digest only; bad digests and modes are refused', (t) => {
  const { document, bytes } = generateProvenance(input({ subject: { names: [], digest: IMAGE } }), 'min');
  validate(t, bytes);
  t.deepEqual(document.subject, [{ digest: { sha256: digestHex(IMAGE) } }]);
  t.throws(() => generateProvenance(input({ context: { digest: 'abc' } }), 'min'), { code: 'INTERNAL' });
  t.throws(() => generateProvenance(input(), 'full' as 'min'), { code: 'USAGE' });
});

test('base image URIs as purls: Docker Hub, registries with ports, digests', (t) => {
  t.is(imageDependencyUri('alpine:3.19', BASE), 'pkg:docker/alpine@3.19');
  t.is(imageDependencyUri('localhost:5000/team/base', BASE, 'linux/arm64/v8'), `pkg:docker/team/base@${BASE}?platform=linux%2Farm64%2Fv8&repository_url=localhost:5000`);
});

test('an SBOM statement wraps an SPDX document for the same subject', (t) => {
  const { document, bytes } = sbomStatement({ spdxVersion: 'SPDX-2.3' }, { names: ['app:1'], digest: IMAGE });
  t.true(schemaValidators().statement(JSON.parse(bytes.toString())), errorsOf(schemaValidators().statement));
  t.is(document.predicateType, 'https://spdx.dev/Document');
});

test('the written schemas refuse what the specs forbid', (t) => {
  const { statement, provenance } = schemaValidators();
  t.false(provenance({ buildDefinition: { externalParameters: {} }, runDetails: { builder: { id: 'https://x.dev/b' } } }));
  t.false(provenance({ buildDefinition: { buildType: 'https://x.dev/t', externalParameters: {} }, runDetails: { builder: {} } }));
  t.false(provenance({ buildDefinition: { buildType: 'https://x.dev/t', externalParameters: {} }, runDetails: { builder: { id: 'https://x.dev/b' }, metadata: { startedOn: '2024-01-01 10:00' } } }));
  t.false(statement({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'no digest' }], predicateType: 'https://x.dev/p', predicate: {} }));
  t.false(statement({ _type: 'https://in-toto.io/Statement/v0.1', subject: [{ digest: { sha256: 'ab' } }], predicateType: 'https://x.dev/p', predicate: {} }));
  t.true(statement({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: 'ab' } }], predicateType: 'https://x.dev/p', predicate: {} }));
});
