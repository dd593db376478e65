/**
 * SPDX 2.3 JSON documents from a scan: the image as the described package, every scanned package
 * CONTAINed by it with its purl, licences and the layer that added it. Reproducible: the namespace
 * comes from the subject digest, the time from the caller (SOURCE_DATE_EPOCH), identifiers from
 * purls, and the bytes from canonical JSON.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import { digestHex, isDigest, sha256 } from '../image/digest.ts';
import { canonicalBytes } from '../image/json.ts';
import type { Platform } from '../image/types.ts';
import { VERSION } from '../version.ts';
import { classifierLicense, combineLicenses, normalizeLicense, type LicenseExpression } from './license.ts';
import { formatPurl } from './purl.ts';
import type { ScanResult, ScannedPackage } from './scan/types.ts';
import { attestationTimestamp } from './time.ts';

import { SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE } from './predicates.ts';

export { SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE };
const NOASSERTION = 'NOASSERTION';
const TOOL = `Tool: lading-${VERSION}`;

export interface SpdxSubject {
  /** The image's name as the user gave it (`registry/repo:tag`), or '' when it has none. */
  name: string;
  /** The manifest digest. */
  digest: string;
  platform?: Platform;
}

export interface SpdxOptions {
  /** The creation time, `YYYY-MM-DDThh:mm:ssZ`; from SOURCE_DATE_EPOCH when the build is reproducible. */
  created: string;
  /** Mixed into the document namespace, so several documents about one image stay distinct. */
  namespaceSeed?: string;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  supplier?: string;
  sourceInfo?: string;
  primaryPackagePurpose?: string;
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
  annotations?: { annotationDate: string; annotationType: 'OTHER'; annotator: string; comment: string }[];
  checksums?: { algorithm: string; checksumValue: string }[];
}

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; comment?: string };
  packages: SpdxPackage[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
  hasExtractedLicensingInfos?: { licenseId: string; name: string; extractedText: string; comment: string }[];
}

export interface GeneratedDocument<T> {
  document: T;
  /** Canonical JSON: the same inputs always give these exact bytes. */
  bytes: Buffer;
  digest: string;
}

/** `SPDXRef-` + letters, digits, `.` and `-` only. */
function spdxId(...parts: string[]): string {
  return `SPDXRef-${parts.map((p) => p.replace(/[^A-Za-z0-9.-]+/g, '-')).join('-')}`;
}

/** The purl of the image: `pkg:oci/<last path element>@<digest>?repository_url=…&tag=…&arch=…`. */
export function imagePurl(subject: SpdxSubject): string {
  const { repository, tag } = splitReference(subject.name);
  const last = repository.slice(repository.lastIndexOf('/') + 1) || 'image';
  return formatPurl({
    type: 'oci',
    name: last.toLowerCase(),
    version: subject.digest,
    qualifiers: {
      arch: subject.platform?.architecture,
      os: subject.platform?.os,
      variant: subject.platform?.variant,
      repository_url: repository.includes('/') ? repository : undefined,
      tag,
    },
  });
}

/** `host/repo:tag@sha256:…` → repository and tag, without parsing what the registry code owns. */
export function splitReference(name: string): { repository: string; tag?: string } {
  const at = name.indexOf('@');
  const noDigest = at >= 0 ? name.slice(0, at) : name;
  const colon = noDigest.lastIndexOf(':');
  if (colon > noDigest.lastIndexOf('/')) return { repository: noDigest.slice(0, colon), tag: noDigest.slice(colon + 1) };
  return { repository: noDigest };
}

/** The SPDX licence expression a package declares, or undefined when it declares none we can read. */
export function declaredLicense(pkg: ScannedPackage): LicenseExpression | undefined {
  if (pkg.licenseExpression) {
    const expr = normalizeLicense(pkg.licenseExpression);
    if (expr) return expr;
  }
  const declared = pkg.licenses.map(normalizeLicense).filter((x): x is LicenseExpression => x !== undefined);
  const clean = declared.length > 0 && declared.every((d) => d.refs.size === 0);
  if (!clean && pkg.licenseClassifiers && pkg.licenseClassifiers.length > 0) {
    const fromClassifiers = pkg.licenseClassifiers.map(classifierLicense).filter((x): x is LicenseExpression => x !== undefined);
    if (fromClassifiers.length > 0) return combineLicenses(fromClassifiers);
  }
  return combineLicenses(declared);
}

const FOUND_BY: Record<ScannedPackage['source'], string> = {
  'dpkg-status': 'the dpkg status database',
  'dpkg-status.d': 'a dpkg status.d entry',
  'apk-installed': 'the apk installed database',
  'npm-package.json': 'an installed package.json',
  'npm-package-lock': 'an npm lock file',
  'yarn-lock': 'a yarn.lock file',
  'pnpm-lock': 'a pnpm-lock.yaml file',
  'python-dist-info': 'Python dist-info METADATA',
  'python-egg-info': 'Python egg-info PKG-INFO',
  'go-binary': 'Go build information in an executable',
};

/** The SPDX 2.3 document for `scan` of the image `subject`. */
export function generateSpdx(scan: ScanResult, subject: SpdxSubject, options: SpdxOptions): GeneratedDocument<SpdxDocument> {
  if (!isDigest(subject.digest)) {
    throw new LadingError(ERROR_CODES.INTERNAL, `SBOM subject digest "${subject.digest}" is not a digest`);
  }
  const created = attestationTimestamp(options.created);
  const seed = sha256(`${options.namespaceSeed ?? ''}\n${subject.digest}`);
  const title = subject.name || subject.digest;
  const namespace = `https://lading.dev/spdx/${encodeURIComponent(title.replace(/[@:]/g, '-'))}-${digestHex(seed)}`;

  const imageId = spdxId('Image', digestHex(subject.digest).slice(0, 16));
  const image: SpdxPackage = {
    SPDXID: imageId,
    name: title,
    versionInfo: subject.digest,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    primaryPackagePurpose: 'CONTAINER',
    checksums: [{ algorithm: 'SHA256', checksumValue: digestHex(subject.digest) }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: imagePurl(subject) }],
  };
  if (!subject.digest.startsWith('sha256:')) delete image.checksums;

  const packages: SpdxPackage[] = [image];
  const relationships: SpdxDocument['relationships'] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  const refs = new Map<string, string>();
  const seen = new Set<string>([imageId]);

  if (scan.distro) {
    const osId = spdxId('OperatingSystem', scan.distro.id, scan.distro.versionId ?? scan.distro.codename ?? 'unknown');
    packages.push({
      SPDXID: osId,
      name: scan.distro.id,
      ...(scan.distro.versionId ? { versionInfo: scan.distro.versionId } : {}),
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      primaryPackagePurpose: 'OPERATING_SYSTEM',
      ...(scan.distro.prettyName ? { sourceInfo: `from /etc/os-release: ${scan.distro.prettyName}` } : {}),
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: osId });
    seen.add(osId);
  }

  for (const pkg of scan.packages) {
    let id = spdxId('Package', pkg.ecosystem, pkg.name, digestHex(sha256(pkg.purl)).slice(0, 16));
    for (let n = 2; seen.has(id); n++) id = spdxId('Package', pkg.ecosystem, pkg.name, digestHex(sha256(pkg.purl)).slice(0, 16), String(n));
    seen.add(id);
    const license = declaredLicense(pkg);
    for (const [ref, text] of license?.refs ?? []) if (!refs.has(ref)) refs.set(ref, text);
    const paths = pkg.locations.map((l) => l.path);
    const out: SpdxPackage = {
      SPDXID: id,
      name: pkg.name,
      versionInfo: pkg.version,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      licenseConcluded: NOASSERTION,
      licenseDeclared: license?.expression ?? NOASSERTION,
      copyrightText: NOASSERTION,
      primaryPackagePurpose: pkg.goMain ? 'APPLICATION' : 'LIBRARY',
      sourceInfo: `acquired package info from ${FOUND_BY[pkg.source]}: ${paths.join(', ')}`,
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: pkg.purl }],
      annotations: [
        {
          annotationDate: created,
          annotationType: 'OTHER',
          annotator: TOOL,
          // Machine-readable: which layer added the package, and every place it was found.
          comment: `lading:layer=${JSON.stringify({ diffID: pkg.layer, index: pkg.layerIndex, locations: pkg.locations.map((l) => ({ path: l.path, layer: scan.layers[l.layerIndex], index: l.layerIndex })) })}`,
        },
      ],
    };
    if (pkg.sourceName || pkg.sourceVersion) {
      out.sourceInfo += `; source package ${pkg.sourceName ?? pkg.name}${pkg.sourceVersion ? ` ${pkg.sourceVersion}` : ''}`;
    }
    packages.push(out);
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }

  const document: SpdxDocument = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: title,
    documentNamespace: namespace,
    creationInfo: {
      created,
      creators: [TOOL],
      comment: `layers (diffIDs, base first): ${scan.layers.join(' ')}`,
    },
    packages,
    relationships,
  };
  if (refs.size > 0) {
    document.hasExtractedLicensingInfos = [...refs.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([licenseId, text]) => ({
        licenseId,
        name: text,
        extractedText: text,
        comment: 'the licence name as the package declares it; it is not on the SPDX licence list',
      }));
  }
  const bytes = canonicalBytes(document);
  return { document, bytes, digest: sha256(bytes) };
}
