/**
 * End to end on a real distribution: the debootstrap bookworm minbase as an OCI layout build
 * context, an image built FROM it with `lading build --sbom` (the real CLI), and the SBOM read
 * back with `lading sbom`: it must list exactly the packages and versions `dpkg-query -W` lists for
 * that root.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { readProvenance, readSbom } from '../../src/index.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { writeProject } from '../helpers/build.ts';
import { missingTools, testNeeding } from '../helpers/tools.ts';
import { ensureDebianTool } from './helpers/apt.ts';
import { debianLayout, type DebianLayout } from './helpers/attach.ts';
import { errorsOf, schemaValidators } from './helpers/schemas.ts';

ensureDebianTool('debootstrap', 'debootstrap');
const TOOLS = ['debootstrap', 'dpkg-query', 'tar'];
const test = testNeeding<{ debian: DebianLayout }>(TOOLS, 'SBOM of an image built FROM Debian');

(anyTest as TestFn<{ debian: DebianLayout }>).before(async (t) => {
  if (missingTools(TOOLS).length > 0) return;
  t.context = { debian: await debianLayout() };
});

test('lading build --sbom FROM a Debian minbase, then lading sbom: the packages and versions dpkg-query lists', async (t) => {
  const { debian } = t.context;
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM debian\nCOPY motd /etc/motd\nENV APP=1\n', motd: 'built by lading\n' });
  const out = path.join(p.dir, 'out');
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const built = await runCli(
    ['build', p.context, '--build-context', `debian=oci-layout://${debian.dir}:bookworm`, '--sbom', '--provenance=max', '-o', `type=oci,dest=${out}`, '-t', 'debian-app:1', '--cache-dir', p.cache, '-q'],
    { env },
  );
  t.is(built.code, 0, built.stderr);
  const ref = `oci:${out}:debian-app:1`;

  const expected = execFileSync('dpkg-query', [`--admindir=${debian.debootstrap.root}/var/lib/dpkg`, '-W', '-f', '${Package}\t${Version}\n'], { encoding: 'utf8' }).trim().split('\n').sort();
  const listed = await runCli(['sbom', ref, '--packages']);
  t.is(listed.code, 0, listed.stderr);
  const found = listed.stdout
    .trim()
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((f) => f[2]!.startsWith('pkg:deb/debian/'))
    .map((f) => `${f[0]}\t${f[1]}`)
    .sort();
  t.true(expected.length > 50, `dpkg-query listed only ${expected.length} packages`);
  t.deepEqual(found, expected);
  t.log(`${found.length} packages, as dpkg-query lists them`);

  // The library reads the same document; it is valid SPDX 2.3 and describes the built image.
  const [sbom] = await readSbom(ref);
  const { spdx } = schemaValidators();
  t.true(spdx(sbom!.predicate), errorsOf(spdx));
  const image = sbom!.predicate.packages.find((x) => x.primaryPackagePurpose === 'CONTAINER')!;
  t.is(`sha256:${image.checksums![0]!.checksumValue}`, sbom!.image.digest);
  t.true(sbom!.predicate.packages.some((x) => x.primaryPackagePurpose === 'OPERATING_SYSTEM' && x.name === 'debian' && x.versionInfo === '12'));
  // Every package came from the base layer (index 0), none from the COPY layer above it.
  const layers = sbom!.predicate.packages
    .filter((x) => x.externalRefs?.[0]?.referenceLocator.startsWith('pkg:deb/'))
    .map((x) => (JSON.parse(x.annotations![0]!.comment.slice('lading:layer='.length)) as { index: number }).index);
  t.deepEqual([...new Set(layers)], [0]);

  const [provenance] = await readProvenance(ref);
  const base = provenance!.predicate.buildDefinition.resolvedDependencies!.find((d) => d.name === 'debian');
  t.deepEqual(base?.digest, { sha256: debian.digest.slice(7) });

  const verified = await runCli(['attest', 'verify', ref]);
  t.is(verified.code, 0, verified.stderr);
  t.regex(verified.stderr, /verified 2 attestations of 1 image/);
});
