import test from 'ava';
import { sha256 } from '../../src/image/digest.ts';
import { generateSpdx, imagePurl, type SpdxDocument } from '../../src/attest/spdx.ts';
import { scanLayers } from '../../src/attest/scan/scan.ts';
import type { ScanResult } from '../../src/attest/scan/types.ts';
import { attestationTimestamp } from '../../src/attest/time.ts';
import { errorsOf, schemaValidators } from './helpers/schemas.ts';
import { file, layer } from './helpers/layers.ts';

const SUBJECT = { name: 'registry.example.com/team/app:1.0', digest: sha256('manifest'), platform: { os: 'linux', architecture: 'amd64' } };
const CREATED = attestationTimestamp(1_700_000_000);

async function sampleScan(): Promise<ScanResult> {
  return scanLayers([
    await layer([
      file('etc/os-release', 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
      file(
        'var/lib/dpkg/status',
        'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n',
      ),
      file('usr/share/doc/libc6/copyright', 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n\nFiles: x/*\nLicense: public-domain\n'),
    ]),
    await layer([
      file('app/node_modules/@scope/pkg/package.json', JSON.stringify({ name: '@scope/pkg', version: '1.0.0', license: 'MIT OR Apache-2.0' })),
      file('app/node_modules/odd/package.json', JSON.stringify({ name: 'odd', version: '2.0.0', license: 'SEE LICENSE IN LICENSE' })),
      file('py/six-1.16.0.dist-info/METADATA', 'Name: six\nVersion: 1.16.0\nClassifier: License :: OSI Approved :: MIT License\n'),
    ]),
  ]);
}

test('the SPDX document validates against the SPDX 2.3 JSON schema', async (t) => {
  const { document, bytes } = generateSpdx(await sampleScan(), SUBJECT, { created: CREATED });
  const { spdx } = schemaValidators();
  t.true(spdx(JSON.parse(bytes.toString('utf8'))), errorsOf(spdx));
  t.is(document.spdxVersion, 'SPDX-2.3');
  // The schema is not a rubber stamp: a purpose spelled as in the spec's prose is refused.
  const broken = JSON.parse(bytes.toString('utf8')) as SpdxDocument;
  broken.packages[1]!.primaryPackagePurpose = 'OPERATING-SYSTEM';
  t.false(spdx(broken));
});

test('packages: purls, declared licences (NOASSERTION when unknown), layers, relationships', async (t) => {
  const scan = await sampleScan();
  const { document } = generateSpdx(scan, SUBJECT, { created: CREATED });
  const image = document.packages[0]!;
  t.is(image.primaryPackagePurpose, 'CONTAINER');
  t.is(image.externalRefs![0]!.referenceLocator, `${imagePurl(SUBJECT)}`);
  t.is(imagePurl(SUBJECT), `pkg:oci/app@${SUBJECT.digest}?arch=amd64&os=linux&repository_url=registry.example.com%2Fteam%2Fapp&tag=1.0`);
  t.deepEqual(document.relationships[0], { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: image.SPDXID });
  const contained = document.relationships.filter((r) => r.relationshipType === 'CONTAINS').map((r) => r.relatedSpdxElement);
  t.deepEqual(contained, document.packages.slice(1).map((p) => p.SPDXID));

  const byName = new Map(document.packages.map((p) => [p.name, p]));
  t.is(byName.get('debian')!.primaryPackagePurpose, 'OPERATING_SYSTEM');
  const libc = byName.get('libc6')!;
  t.is(libc.licenseDeclared, 'LGPL-2.1-or-later AND LicenseRef-public-domain');
  t.is(libc.licenseConcluded, 'NOASSERTION');
  t.deepEqual(libc.externalRefs, [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12' }]);
  t.regex(libc.sourceInfo!, /dpkg status database: \/var\/lib\/dpkg\/status; source package glibc/);
  const layerNote = JSON.parse(libc.annotations![0]!.comment.replace(/^lading:layer=/, '')) as { diffID: string; index: number };
  t.deepEqual([layerNote.diffID, layerNote.index], [scan.layers[0], 0]);
  t.is(byName.get('tzdata')!.licenseDeclared, 'NOASSERTION');
  t.is(byName.get('@scope/pkg')!.licenseDeclared, 'MIT OR Apache-2.0');
  t.is(byName.get('odd')!.licenseDeclared, 'NOASSERTION');
  t.is(byName.get('six')!.licenseDeclared, 'MIT');
  const npmNote = JSON.parse(byName.get('@scope/pkg')!.annotations![0]!.comment.replace(/^lading:layer=/, '')) as { diffID: string; index: number };
  t.deepEqual([npmNote.diffID, npmNote.index], [scan.layers[1], 1]);
  t.deepEqual(document.hasExtractedLicensingInfos?.map((e) => [e.licenseId, e.extractedText]), [['LicenseRef-public-domain', 'public-domain']]);
  for (const p of document.packages) t.regex(p.SPDXID, /^SPDXRef-[A-Za-z0-9.-]+$/);
  t.is(new Set(document.packages.map((p) => p.SPDXID)).size, document.packages.length);
});

test('reproducible: the same scan, subject and time give the same bytes; the namespace follows the digest', async (t) => {
  const a = generateSpdx(await sampleScan(), SUBJECT, { created: CREATED });
  const b = generateSpdx(await sampleScan(), SUBJECT, { created: '2023-11-14T22:13:20.000Z' });
  t.true(a.bytes.equals(b.bytes));
  t.is(a.digest, b.digest);
  const other = generateSpdx(await sampleScan(), { ...SUBJECT, digest: sha256('other manifest') }, { created: CREATED });
  t.not((other.document as SpdxDocument).documentNamespace, a.document.documentNamespace);
  const seeded = generateSpdx(await sampleScan(), SUBJECT, { created: CREATED, namespaceSeed: 'sbom-2' });
  t.not(seeded.document.documentNamespace, a.document.documentNamespace);
  t.is(a.document.creationInfo.created, '2023-11-14T22:13:20Z');
  // Canonical JSON: keys sorted, no white space.
  t.false(a.bytes.includes('\n'));
  t.true(a.bytes.toString().startsWith('{"SPDXID":"SPDXRef-DOCUMENT","creationInfo":'));
});

test('an image without packages or a name still makes a valid document', async (t) => {
  const { bytes, document } = generateSpdx({ layers: [], packages: [], warnings: [] }, { name: '', digest: SUBJECT.digest }, { created: CREATED });
  t.true(schemaValidators().spdx(JSON.parse(bytes.toString())), errorsOf(schemaValidators().spdx));
  t.is(document.name, SUBJECT.digest);
  t.throws(() => generateSpdx({ layers: [], packages: [], warnings: [] }, { name: 'x', digest: 'nope' }, { created: CREATED }));
  t.throws(() => generateSpdx({ layers: [], packages: [], warnings: [] }, { name: 'x', digest: SUBJECT.digest }, { created: 'yesterday' }), { code: 'USAGE' });
});
