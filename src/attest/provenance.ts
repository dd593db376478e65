/**
 * SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance) in an in-toto Statement v1
 * (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) for an image lading
 * built from a Dockerfile. The build type is documented in docs/attestations.md. When the build is
 * reproducible (SOURCE_DATE_EPOCH given), the times come from it and the invocation id from the
 * build definition, so the same build gives the same bytes.
 */
import { randomUUID } from 'node:crypto';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { digestAlgorithm, digestHex, isDigest, sha256 } from '../image/digest.ts';
import { canonicalBytes } from '../image/json.ts';
import { VERSION } from '../version.ts';
import { stripCredentials, type GitSource } from './git.ts';
import { formatPurl } from './purl.ts';
import type { GeneratedDocument } from './spdx.ts';
import { splitReference } from './spdx.ts';
import { attestationTimestamp } from './time.ts';

import { INTOTO_STATEMENT_TYPE, SLSA_PROVENANCE_PREDICATE_TYPE } from './predicates.ts';

export { INTOTO_STATEMENT_TYPE, SLSA_PROVENANCE_PREDICATE_TYPE };
export const LADING_BUILD_TYPE = 'https://lading.dev/build-types/dockerfile/v1';
export const DEFAULT_BUILDER_ID = 'https://lading.dev/builders/cli/v1';

export type ProvenanceMode = 'min' | 'max';

/** A digest set: algorithm → lowercase hex (`{"sha256": "…"}`, `{"gitCommit": "…"}`). */
export type DigestSet = Record<string, string>;

export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: DigestSet;
  mediaType?: string;
  annotations?: Record<string, unknown>;
}

export interface SlsaProvenance {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
  };
}

export interface InTotoStatement<P> {
  _type: typeof INTOTO_STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate: P;
}

export interface ProvenanceInput {
  /** What was built: the image's names (as tagged) and its manifest or index digest. */
  subject: { names: string[]; digest: string };
  /** The Dockerfile: its path relative to the context (as the user named it) and the digest of its bytes. */
  dockerfile: { path: string; digest: string };
  target?: string;
  /** Requested platforms, `os/arch[/variant]`. */
  platforms: string[];
  /** `--build-arg` values (recorded in max mode only: they may hold secrets). */
  buildArgs?: Record<string, string>;
  /** `--label` values (max mode only). */
  labels?: Record<string, string>;
  /** Base images as resolved: the reference as written after expansion, its digest, the platform used. */
  baseImages: { ref: string; digest: string; platform?: string }[];
  /** The content digest of the build context. */
  context: { digest: string };
  /** From gitSource(contextDir) when the context is a checkout. */
  git?: GitSource;
  builder?: { id?: string; version?: string };
  /** lading's own options for this build (internalParameters, max mode only). */
  options?: Record<string, unknown>;
  /** Set for a reproducible build: start and finish times become this, the invocation id is derived. */
  sourceDateEpoch?: number;
  startedOn?: Date | string;
  finishedOn?: Date | string;
  /** For a non-reproducible build; a random UUID when absent. */
  invocationId?: string;
}

function digestSet(digest: string, what: string): DigestSet {
  if (!isDigest(digest)) throw new LadingError(ERROR_CODES.INTERNAL, `provenance: ${what} digest "${digest}" is not a digest`);
  return { [digestAlgorithm(digest)]: digestHex(digest) };
}

function sorted<T>(values: T[], key: (v: T) => string): T[] {
  return values.slice().sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function sortedRecord(record: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(record ?? {}).sort()) out[k] = record![k]!;
  return out;
}

/** `pkg:docker/<namespace>/<name>@<tag or digest>?platform=…&repository_url=<registry>` for a base image. */
export function imageDependencyUri(ref: string, digest: string, platform?: string): string {
  const { repository, tag } = splitReference(ref);
  const parts = repository.split('/');
  const first = parts[0]!;
  const registry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost') ? parts.shift() : undefined;
  const name = parts.pop()!;
  return formatPurl({
    type: 'docker',
    namespace: parts.join('/'),
    name,
    version: tag ?? digest,
    qualifiers: { platform, repository_url: registry },
  });
}

/** `git+<remote>@<ref>` as SLSA's git dependency URIs are written. */
function gitUri(git: GitSource): string | undefined {
  if (!git.uri) return undefined;
  const remote = stripCredentials(git.uri);
  return `${remote.startsWith('git+') ? '' : 'git+'}${remote}${git.ref ? `@${git.ref}` : ''}`;
}

export function generateProvenance(input: ProvenanceInput, mode: ProvenanceMode): GeneratedDocument<InTotoStatement<SlsaProvenance>> {
  if (mode !== 'min' && mode !== 'max') {
    throw new LadingError(ERROR_CODES.USAGE, `unknown provenance mode "${String(mode)}"`, { hint: 'use mode=min or mode=max' });
  }
  const subjectDigest = digestSet(input.subject.digest, 'subject');
  const names = [...new Set(input.subject.names.filter((n) => n !== ''))].sort();
  const subject: ResourceDescriptor[] = names.length > 0 ? names.map((name) => ({ name, digest: subjectDigest })) : [{ digest: subjectDigest }];

  const externalParameters: Record<string, unknown> = {
    dockerfile: { path: input.dockerfile.path, digest: digestSet(input.dockerfile.digest, 'Dockerfile') },
    platforms: [...input.platforms],
  };
  if (input.target) externalParameters.target = input.target;
  const source = input.git ? gitUri(input.git) : undefined;
  if (input.git) {
    externalParameters.source = {
      ...(source ? { uri: source } : {}),
      ...(input.git.subdir ? { subdir: input.git.subdir } : {}),
    };
  }
  if (mode === 'max') {
    externalParameters.buildArgs = sortedRecord(input.buildArgs);
    externalParameters.labels = sortedRecord(input.labels);
  }

  const resolvedDependencies: ResourceDescriptor[] = [];
  for (const base of sorted(input.baseImages, (b) => `${b.ref}\0${b.platform ?? ''}\0${b.digest}`)) {
    resolvedDependencies.push({ name: base.ref, uri: imageDependencyUri(base.ref, base.digest, base.platform), digest: digestSet(base.digest, `base image ${base.ref}`) });
  }
  resolvedDependencies.push({ name: 'context', digest: digestSet(input.context.digest, 'context') });
  if (input.git) {
    resolvedDependencies.push({
      name: 'source',
      ...(source ? { uri: source } : {}),
      digest: { gitCommit: input.git.revision },
      annotations: { dirty: input.git.dirty },
    });
  }

  const buildDefinition: SlsaProvenance['buildDefinition'] = { buildType: LADING_BUILD_TYPE, externalParameters, resolvedDependencies };
  if (mode === 'max') buildDefinition.internalParameters = { ...(input.options ?? {}) };

  let metadata: NonNullable<SlsaProvenance['runDetails']['metadata']>;
  if (input.sourceDateEpoch !== undefined) {
    const at = attestationTimestamp(input.sourceDateEpoch);
    // Derived, not random: the same build definition and output give the same id.
    const invocationId = digestHex(sha256(canonicalBytes({ buildDefinition, subject })));
    metadata = { invocationId, startedOn: at, finishedOn: at };
  } else {
    const finished = attestationTimestamp(input.finishedOn ?? new Date());
    metadata = {
      invocationId: input.invocationId ?? randomUUID(),
      startedOn: attestationTimestamp(input.startedOn ?? finished),
      finishedOn: finished,
    };
  }

  const document: InTotoStatement<SlsaProvenance> = {
    _type: INTOTO_STATEMENT_TYPE,
    subject,
    predicateType: SLSA_PROVENANCE_PREDICATE_TYPE,
    predicate: {
      buildDefinition,
      runDetails: {
        builder: { id: input.builder?.id ?? DEFAULT_BUILDER_ID, version: { lading: input.builder?.version ?? VERSION } },
        metadata,
      },
    },
  };
  const bytes = canonicalBytes(document);
  return { document, bytes, digest: sha256(bytes) };
}

/**
 * An SPDX document wrapped in an in-toto Statement (predicateType https://spdx.dev/Document), the
 * form BuildKit attaches SBOMs in.
 */
export function sbomStatement(spdx: unknown, subject: { names: string[]; digest: string }): GeneratedDocument<InTotoStatement<unknown>> {
  const digest = digestSet(subject.digest, 'subject');
  const names = [...new Set(subject.names.filter((n) => n !== ''))].sort();
  const document: InTotoStatement<unknown> = {
    _type: INTOTO_STATEMENT_TYPE,
    subject: names.length > 0 ? names.map((name) => ({ name, digest })) : [{ digest }],
    predicateType: 'https://spdx.dev/Document',
    predicate: spdx,
  };
  const bytes = canonicalBytes(document);
  return { document, bytes, digest: sha256(bytes) };
}
