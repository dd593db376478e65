/**
 * The scanner against a real Debian root: a bookworm minbase made by debootstrap, as a layer tar
 * made by GNU tar. The SBOM must list exactly the packages and versions `dpkg-query` lists for
 * that root's database.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import { sha256 } from '../../src/image/digest.ts';
import { generateSpdx } from '../../src/attest/spdx.ts';
import { scanLayers } from '../../src/attest/scan/scan.ts';
import type { ScanLayer, ScanResult } from '../../src/attest/scan/types.ts';
import { attestationTimestamp } from '../../src/attest/time.ts';
import anyTest, { type TestFn } from 'ava';
import { missingTools, testNeeding } from '../helpers/tools.ts';
import { ensureDebianTool } from './helpers/apt.ts';
import { debootstrapImage, hashOf, type DebootstrapImage } from './helpers/debootstrap.ts';
import { errorsOf, schemaValidators } from './helpers/schemas.ts';

ensureDebianTool('debootstrap', 'debootstrap');
type Context = { image: DebootstrapImage; layer: ScanLayer; scan: ScanResult };
const TOOLS = ['debootstrap', 'dpkg-query', 'tar'];
const test = testNeeding<Context>(TOOLS, 'Debian bookworm SBOM');

// A skipped suite has no `before`; the real one builds (or reuses) the root only when it will run.
(anyTest as TestFn<Context>).before(async (t) => {
  if (missingTools(TOOLS).length > 0) return;
  const image = await debootstrapImage();
  const layer: ScanLayer = {
    descriptor: {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: await hashOf(image.layer, false),
      size: statSync(image.layer).size,
      diffID: await hashOf(image.layer, true),
    },
    open: async () => createReadStream(image.layer),
  };
  t.context = { image, layer, scan: await scanLayers([layer]) };
});

test('the SBOM lists exactly the packages and versions dpkg-query lists', (t) => {
  const { image, scan } = t.context;
  const listed = execFileSync('dpkg-query', [`--admindir=${image.root}/var/lib/dpkg`, '-W', '-f', '${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  // Every package of a fresh minbase is installed ("ii"), so -W lists exactly the installed set.
  t.true(listed.every((f) => f[3]!.trim() === 'ii'));
  const expected = listed.map((f) => `${f[0]} ${f[1]} ${f[2]}`).sort();
  const found = scan.packages.filter((p) => p.ecosystem === 'deb').map((p) => `${p.name} ${p.version} ${p.architecture}`).sort();
  t.deepEqual(found, expected);
  t.true(expected.length > 50, `only ${expected.length} packages`);
  t.log(`${found.length} Debian packages, as dpkg-query lists`);
  t.deepEqual(scan.distro, { id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
  t.deepEqual(scan.warnings, []);
});

test('purls, layer and licences of the Debian packages', (t) => {
  const { scan, layer } = t.context;
  const libc = scan.packages.find((p) => p.name === 'libc6')!;
  t.regex(libc.purl, /^pkg:deb\/debian\/libc6@2\.36-9%2Bdeb12u\d+\?arch=amd64&distro=debian-12$/);
  t.is(libc.layer, layer.descriptor.diffID);
  t.is(libc.sourceName, 'glibc');
  const bash = scan.packages.find((p) => p.name === 'bash')!;
  t.true(bash.licenses.includes('GPL-3+'));
  // Packages whose copyright file is machine-readable carry licences; count them to catch regressions.
  const withLicence = scan.packages.filter((p) => p.licenses.length > 0).length;
  t.true(withLicence >= scan.packages.length - 20, `${withLicence} of ${scan.packages.length} have licences`);
});

test('its SPDX document validates against the SPDX 2.3 schema and is reproducible', async (t) => {
  const { scan, layer } = t.context;
  const subject = { name: 'debian:bookworm-minbase', digest: sha256('test manifest'), platform: { os: 'linux', architecture: 'amd64' } };
  const created = attestationTimestamp(1_700_000_000);
  const a = generateSpdx(scan, subject, { created });
  const { spdx } = schemaValidators();
  t.true(spdx(JSON.parse(a.bytes.toString('utf8'))), errorsOf(spdx));
  const again = generateSpdx(await scanLayers([layer]), subject, { created });
  t.true(a.bytes.equals(again.bytes));
  t.is(a.document.packages.filter((p) => p.externalRefs?.[0]?.referenceLocator.startsWith('pkg:deb/')).length, scan.packages.length);
});
