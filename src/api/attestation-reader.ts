/**
 * Reading attestations back, from a registry or an OCI layout folder, wherever they were attached:
 * attestation manifests in the image index (BuildKit's layout) and OCI 1.1 referrers of each image
 * manifest (the referrers API, its fallback tag, or a layout's index.json). While reading, every
 * attestation is checked against what it claims to describe: the attestation manifest must name an
 * image of the index, and each statement's subjects must carry that image's manifest digest. What
 * does not hold is reported, never silently dropped.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { InTotoStatement, SlsaProvenance, SpdxDocument } from '../attest/index.ts';
import { INTOTO_STATEMENT_TYPE, SLSA_PROVENANCE_PREDICATE_TYPE, SPDX_PREDICATE_TYPE } from '../attest/predicates.ts';
import { digestHex, sha256 } from '../image/digest.ts';
import type { BlobSource } from '../image/image.ts';
import { isIndexMediaType, isManifestMediaType } from '../image/mediatypes.ts';
import { parsePlatform, platformMatches, platformToString } from '../image/platform.ts';
import type { Descriptor, Index, Manifest, Platform } from '../image/types.ts';
import { layoutBlobSource, REF_NAME_ANNOTATION } from '../output/oci-layout.ts';
import { parseReference, type ImageReference } from '../registry/reference.ts';
import { referrerDescriptor } from '../registry/referrer-descriptor.ts';
import { ATTESTATION_MANIFEST, INTOTO_MEDIA_TYPE, PREDICATE_TYPE_ANNOTATION, REFERENCE_DIGEST_ANNOTATION, REFERENCE_TYPE_ANNOTATION } from './attestations.ts';
import { registryClient, type TransferOptions } from './registry.ts';

export type { InTotoStatement, SlsaProvenance, SpdxDocument };

export interface ReadAttestationsOptions extends TransferOptions {
  /** Only the image of this platform (`os/arch[/variant]`). */
  platform?: string;
}

/** One in-toto statement found attached to an image. */
export interface FoundAttestation {
  /** The image manifest it is attached to (and its platform, when an index names one). */
  image: { digest: string; platform?: string };
  /** Where it was found: an attestation manifest of the index, or a referrer of the image. */
  via: 'index' | 'referrers';
  /** The attestation manifest or the referrer artifact. */
  manifest: Descriptor;
  /** The statement's blob. */
  layer: Descriptor;
  predicateType: string;
  statement: InTotoStatement<unknown>;
}

export interface AttestationReport {
  /** What was read: a registry reference or `oci:DIR[:TAG]`. */
  reference: string;
  /** Digest of the index or manifest the reference names. */
  digest: string;
  /** The image manifests (not attestations) it holds. */
  images: { digest: string; platform?: string }[];
  attestations: FoundAttestation[];
  /** Every way an attestation fails to describe the image it is attached to. */
  problems: string[];
}

export interface AttestationVerifyReport extends AttestationReport {
  ok: boolean;
}

interface Fetched {
  bytes: Buffer;
  digest: string;
  doc: Manifest | Index;
}

/** Where manifests, blobs and referrers come from: a registry repository or a layout folder. */
interface Source {
  readonly name: string;
  root(): Promise<Fetched>;
  manifest(desc: Descriptor): Promise<Fetched>;
  blob(desc: Descriptor): Promise<Buffer>;
  referrers(subjectDigest: string): Promise<Descriptor[]>;
  close(): void;
}

/** The statements attached to `reference` (a registry reference, or `oci:DIR[:TAG]` / `oci-layout://DIR[:TAG]`). */
export async function readAttestations(reference: string, options: ReadAttestationsOptions = {}): Promise<AttestationReport> {
  const source = await openSource(reference, options);
  try {
    return await collect(source, options.platform ? parsePlatform(options.platform) : undefined);
  } finally {
    source.close();
  }
}

/** Every attestation checked against the image it describes; `ok` only when there is at least one and nothing is wrong. */
export async function verifyAttestations(reference: string, options: ReadAttestationsOptions = {}): Promise<AttestationVerifyReport> {
  const report = await readAttestations(reference, options);
  const problems = [...report.problems];
  if (report.attestations.length === 0 && problems.length === 0) problems.push(`no attestations are attached to ${report.reference}`);
  return { ...report, problems, ok: problems.length === 0 };
}

export interface AttachedDocument<P> {
  image: { digest: string; platform?: string };
  via: 'index' | 'referrers';
  /** The statement's predicate: the SPDX document, or the SLSA provenance. */
  predicate: P;
  statement: InTotoStatement<P>;
}

/** The SPDX documents attached to `reference`, one per image (and per attachment, when attached both ways). */
export async function readSbom(reference: string, options: ReadAttestationsOptions = {}): Promise<AttachedDocument<SpdxDocument>[]> {
  return predicatesOf<SpdxDocument>(await readAttestations(reference, options), SPDX_PREDICATE_TYPE);
}

/** The SLSA provenance statements attached to `reference`. */
export async function readProvenance(reference: string, options: ReadAttestationsOptions = {}): Promise<AttachedDocument<SlsaProvenance>[]> {
  return predicatesOf<SlsaProvenance>(await readAttestations(reference, options), SLSA_PROVENANCE_PREDICATE_TYPE);
}

function predicatesOf<P>(report: AttestationReport, predicateType: string): AttachedDocument<P>[] {
  return report.attestations
    .filter((a) => a.predicateType === predicateType)
    .map((a) => {
      const statement = a.statement as InTotoStatement<P>;
      return { image: a.image, via: a.via, predicate: statement.predicate, statement };
    });
}

async function collect(source: Source, platform: Platform | undefined): Promise<AttestationReport> {
  const root = await source.root();
  const report: AttestationReport = { reference: source.name, digest: root.digest, images: [], attestations: [], problems: [] };
  const rootIsIndex = 'manifests' in root.doc;
  if (!rootIsIndex) {
    report.images.push({ digest: root.digest });
  } else {
    const index = root.doc as Index;
    const imageDescs = index.manifests.filter(isImageDescriptor);
    for (const d of imageDescs) {
      if (platform && !(d.platform && platformMatches(d.platform, platform))) continue;
      report.images.push({ digest: d.digest, ...(d.platform ? { platform: platformToString(d.platform) } : {}) });
    }
    for (const d of index.manifests.filter(isAttestationDescriptor)) {
      const target = d.annotations?.[REFERENCE_DIGEST_ANNOTATION];
      const image = imageDescs.find((x) => x.digest === target);
      if (platform && image && !(image.platform && platformMatches(image.platform, platform))) continue;
      await readIndexAttestation(source, d, image, report);
    }
  }
  // Referrers of each image, and of the index itself (signers attach to indexes too).
  const subjects = [...report.images, ...(rootIsIndex && !platform ? [{ digest: root.digest, platform: undefined }] : [])];
  for (const subject of subjects) {
    for (const d of await source.referrers(subject.digest)) await readReferrer(source, d, subject, report);
  }
  return report;
}

/**
 * An index entry BuildKit's layout marks as an attestation manifest. Other `unknown/unknown`
 * entries are neither images nor attestations: BuildKit's rule is to ignore them.
 */
function isAttestationDescriptor(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST;
}

function isImageDescriptor(d: Descriptor): boolean {
  return !isAttestationDescriptor(d) && !(d.platform?.os === 'unknown' && d.platform.architecture === 'unknown') && d.annotations?.[REFERENCE_TYPE_ANNOTATION] === undefined;
}

async function readIndexAttestation(source: Source, d: Descriptor, image: Descriptor | undefined, report: AttestationReport): Promise<void> {
  const where = `attestation manifest ${d.digest}`;
  const target = d.annotations?.[REFERENCE_DIGEST_ANNOTATION];
  if (d.platform?.os !== 'unknown' || d.platform.architecture !== 'unknown') {
    report.problems.push(`${where} has platform ${d.platform ? platformToString(d.platform) : '(none)'}, not unknown/unknown: runtimes could pull it as an image`);
  }
  if (!target) {
    report.problems.push(`${where} has no ${REFERENCE_DIGEST_ANNOTATION} annotation naming the image it describes`);
    return;
  }
  if (!image) {
    report.problems.push(`${where} describes ${target}, which is not an image of the index ${report.digest}`);
    return;
  }
  const subject = { digest: image.digest, ...(image.platform ? { platform: platformToString(image.platform) } : {}) };
  await readStatements(source, d, subject, 'index', report);
}

async function readReferrer(source: Source, d: Descriptor, subject: { digest: string; platform?: string }, report: AttestationReport): Promise<void> {
  if (!isManifestMediaType(d.mediaType)) return;
  const fetched = await readManifest(source, d, report);
  if (!fetched) return;
  const manifest = fetched.doc as Manifest;
  if (manifest.subject?.digest !== subject.digest) {
    report.problems.push(`referrer ${d.digest} is listed for ${subject.digest} but its subject is ${manifest.subject?.digest ?? '(none)'}`);
    return;
  }
  await readStatements(source, d, subject, 'referrers', report, fetched);
}

async function readManifest(source: Source, d: Descriptor, report: AttestationReport): Promise<Fetched | undefined> {
  try {
    const fetched = await source.manifest(d);
    if ('manifests' in fetched.doc) {
      report.problems.push(`${d.digest} should be a manifest but is an index`);
      return undefined;
    }
    return fetched;
  } catch (err) {
    report.problems.push(`cannot read manifest ${d.digest}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Read each in-toto layer and check its subjects against the image digest. */
async function readStatements(source: Source, d: Descriptor, image: { digest: string; platform?: string }, via: 'index' | 'referrers', report: AttestationReport, fetched?: Fetched): Promise<void> {
  const got = fetched ?? (await readManifest(source, d, report));
  if (!got) return;
  const manifest = got.doc as Manifest;
  const imageHex = digestHex(image.digest);
  for (const layer of manifest.layers ?? []) {
    if (layer.mediaType !== INTOTO_MEDIA_TYPE) continue;
    const where = `statement ${layer.digest} in ${via === 'index' ? 'attestation manifest' : 'referrer'} ${d.digest}`;
    let statement: InTotoStatement<unknown>;
    try {
      statement = JSON.parse((await source.blob(layer)).toString('utf8')) as InTotoStatement<unknown>;
    } catch (err) {
      report.problems.push(`cannot read ${where}: ${(err as Error).message}`);
      continue;
    }
    const statementType = (statement as { _type?: unknown })._type;
    if (statementType !== INTOTO_STATEMENT_TYPE && statementType !== 'https://in-toto.io/Statement/v0.1') {
      report.problems.push(`${where} is not an in-toto statement (_type ${JSON.stringify(statementType)})`);
      continue;
    }
    const annotated = layer.annotations?.[PREDICATE_TYPE_ANNOTATION];
    if (annotated !== undefined && annotated !== statement.predicateType) {
      report.problems.push(`${where} is annotated ${annotated} but its predicateType is ${statement.predicateType}`);
    }
    const subjects = Array.isArray(statement.subject) ? statement.subject : [];
    if (subjects.length === 0) report.problems.push(`${where} has no subject`);
    for (const s of subjects) {
      const hex = s.digest?.sha256;
      if (hex !== imageHex) {
        report.problems.push(`${where} (${statement.predicateType}) names subject ${s.name ?? ''}${s.name ? ' ' : ''}sha256:${hex ?? '(none)'}, but it is attached to image ${image.digest}${image.platform ? ` (${image.platform})` : ''}`);
      }
    }
    report.attestations.push({ image, via, manifest: { mediaType: manifest.mediaType ?? d.mediaType, digest: got.digest, size: got.bytes.length }, layer, predicateType: statement.predicateType, statement });
  }
}

async function openSource(reference: string, options: ReadAttestationsOptions): Promise<Source> {
  const layout = layoutSpec(reference);
  return layout ? layoutSource(reference, layout) : registrySource(parseReference(reference), options);
}

function parseDoc(bytes: Buffer, what: string): Manifest | Index {
  try {
    return JSON.parse(bytes.toString('utf8')) as Manifest | Index;
  } catch {
    throw new LadingError(ERROR_CODES.IMAGE, `${what} is not JSON`);
  }
}

function registrySource(ref: ImageReference, options: ReadAttestationsOptions): Source {
  const client = registryClient(options, options.onEvent, options.signal);
  const repo = `${ref.registry}/${ref.repository}`;
  return {
    name: ref.toString(),
    root: async () => {
      const m = await client.manifest(ref);
      return { bytes: m.bytes, digest: m.digest, doc: m.doc };
    },
    manifest: async (d) => {
      const m = await client.manifest(`${repo}@${d.digest}`);
      return { bytes: m.bytes, digest: m.digest, doc: m.doc };
    },
    blob: (d) => client.blob(ref, d, 64 * 1024 * 1024),
    referrers: async (digest) => (await client.referrers(ref, digest)).descriptors,
    close: () => client.close(),
  };
}

/** `oci:DIR[:TAG|@DIGEST]` or `oci-layout://DIR[:TAG|@DIGEST]`; undefined for a registry reference. */
function layoutSpec(reference: string): { dir: string; refName?: string; digest?: string } | undefined {
  const prefix = ['oci-layout://', 'oci:'].find((p) => reference.startsWith(p));
  if (!prefix) return undefined;
  const spec = reference.slice(prefix.length);
  const at = spec.lastIndexOf('@');
  if (at > 0 && /^sha256:[0-9a-f]{64}$/.test(spec.slice(at + 1))) return { dir: path.resolve(spec.slice(0, at)), digest: spec.slice(at + 1) };
  // The folder is the longest prefix before a colon that is a layout; the rest names the tag (which may hold colons).
  for (let i = spec.length; i > 0; i = spec.lastIndexOf(':', i - 1)) {
    const dir = spec.slice(0, i);
    if (existsSync(path.join(dir, 'index.json'))) return i === spec.length ? { dir: path.resolve(dir) } : { dir: path.resolve(dir), refName: spec.slice(i + 1) };
  }
  throw new LadingError(ERROR_CODES.USAGE, `${reference} names no OCI layout folder`, { hint: 'write oci:DIR or oci:DIR:TAG, where DIR holds index.json' });
}

async function layoutSource(name: string, spec: { dir: string; refName?: string; digest?: string }): Promise<Source> {
  const { dir } = spec;
  let index: Index;
  try {
    index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as Index;
  } catch (err) {
    throw new LadingError(ERROR_CODES.IMAGE, `cannot read ${path.join(dir, 'index.json')}: ${(err as Error).message}`, { hint: 'point at an OCI layout folder' });
  }
  const blobs: BlobSource = layoutBlobSource(dir);
  const cache = new Map<string, Fetched>();
  const manifest = async (d: Descriptor): Promise<Fetched> => {
    let f = cache.get(d.digest);
    if (!f) {
      const bytes = await blobs.read(d);
      f = { bytes, digest: sha256(bytes), doc: parseDoc(bytes, `manifest ${d.digest} in ${dir}`) };
      cache.set(d.digest, f);
    }
    return f;
  };
  /** Entries of index.json that are referrers (their manifest has a subject). */
  const referrerEntries = async (): Promise<{ desc: Descriptor; manifest: Manifest; bytes: Buffer }[]> => {
    const out: { desc: Descriptor; manifest: Manifest; bytes: Buffer }[] = [];
    for (const d of index.manifests) {
      if (!isManifestMediaType(d.mediaType)) continue;
      const f = await manifest(d);
      const m = f.doc as Manifest;
      if (m.subject) out.push({ desc: d, manifest: m, bytes: f.bytes });
    }
    return out;
  };
  const root = async (): Promise<Fetched> => {
    let candidates = index.manifests;
    if (spec.digest) candidates = candidates.filter((d) => d.digest === spec.digest);
    else if (spec.refName) {
      const want = spec.refName;
      candidates = candidates.filter((d) => {
        const n = d.annotations?.[REF_NAME_ANNOTATION];
        return n === want || (n !== undefined && (n.endsWith(`:${want}`) || want.endsWith(`:${n}`)));
      });
    } else {
      const referrers = new Set((await referrerEntries()).map((r) => r.desc.digest));
      candidates = candidates.filter((d) => !referrers.has(d.digest));
    }
    if (candidates.length !== 1) {
      const names = index.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest).join(', ');
      throw new LadingError(ERROR_CODES.IMAGE, candidates.length === 0 ? `nothing in ${dir} matches ${spec.refName ?? spec.digest ?? ''}` : `${dir} holds several images (${names})`, {
        hint: 'name one: oci:DIR:TAG or oci:DIR@sha256:DIGEST',
      });
    }
    const d = candidates[0]!;
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) throw new LadingError(ERROR_CODES.IMAGE, `${d.digest} in ${dir} is a ${d.mediaType}, not an image`);
    return manifest(d);
  };
  return {
    name,
    root,
    manifest,
    blob: (d) => blobs.read(d),
    referrers: async (digest) => (await referrerEntries()).filter((r) => r.manifest.subject?.digest === digest).map((r) => referrerDescriptor(r.manifest, r.bytes)),
    close: () => {},
  };
}
