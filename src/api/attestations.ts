/**
 * Attestations on a build's images: for each platform, an SBOM (SPDX 2.3 in an in-toto
 * statement) from a scan of that image's own layers, and SLSA provenance v1, attached the way
 * registries and tools read them:
 *
 * - `index` (default, BuildKit's layout): one attestation manifest per platform in the image
 *   index, platform `unknown/unknown`, annotated `vnd.docker.reference.type: attestation-manifest`
 *   and `vnd.docker.reference.digest: <image manifest>`, its layers the statements
 *   (`application/vnd.in-toto+json`, annotated `in-toto.io/predicate-type`). A single-platform
 *   build becomes an index, as with buildx.
 * - `referrers`: one OCI 1.1 artifact per statement whose `subject` is the platform's image
 *   manifest, pushed through the referrers API or its fallback tag, and listed in OCI layouts.
 *
 * Everything is derived from the build's inputs and SOURCE_DATE_EPOCH (0 when unset, as for the
 * layers), never from tags, hosts or the clock, so the same build gives the same attestation bytes
 * and digests.
 */
import path from 'node:path';
import { Readable } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
// The scanners and generators load only when a statement is made (makeStatements): a build
// without attestations never needs them.
import { gitSource } from '../attest/git.ts';
import { SLSA_PROVENANCE_PREDICATE_TYPE, SPDX_MEDIA_TYPE, SPDX_PREDICATE_TYPE } from '../attest/predicates.ts';
import { attestationTimestamp } from '../attest/time.ts';
import type { BuildContext } from '../context/context.ts';
import { sha256 } from '../image/digest.ts';
import { descriptorOf, type BlobSource, type Image, type ImageIndex } from '../image/image.ts';
import { canonicalBytes } from '../image/json.ts';
import { MediaType } from '../image/mediatypes.ts';
import { assembleImage, layersOf } from '../image/mutate.ts';
import { parsePlatform } from '../image/platform.ts';
import type { Descriptor, ImageConfig, Index, LayerDescriptor, Manifest } from '../image/types.ts';
import { writeOciLayout } from '../output/oci-layout.ts';
import { parseReference } from '../registry/reference.ts';
import type { PushResult, RegistryClient } from '../registry/index.ts';
import type { BuildOptions, OutputSpec, PlatformImage } from './build.ts';

export const INTOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';
/** The OCI 1.1 empty descriptor: an artifact's config when it has none. */
export const EMPTY_CONFIG: Descriptor = { mediaType: MediaType.OCI_EMPTY, digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 };

export type AttestAs = 'index' | 'referrers';

/** What a build attaches; undefined members were not asked for. */
export interface AttestationSettings {
  sbom: boolean;
  provenance: 'min' | 'max' | false;
  attestAs: AttestAs;
}

/** One in-toto statement made for one platform's image. */
export interface MadeStatement {
  predicateType: string;
  /** The referrer's artifactType: SPDX's media type for SBOMs, the statement's for the rest. */
  artifactType: string;
  bytes: Buffer;
  digest: string;
}

/** What the build knows that the attestations record. */
export interface AttestationInput {
  options: BuildOptions;
  outputs: OutputSpec[];
  tags: string[];
  /** SOURCE_DATE_EPOCH of the build (0 when unset). */
  epoch: number;
  images: PlatformImage[];
  /** Per platform, in the order of `images`: the base images the engine resolved. */
  bases: { ref: string; digest: string }[][];
  context: BuildContext;
  dockerfile: { text: string; path: string };
  /** `index:` annotations, for the index a single-platform build becomes. */
  indexAnnotations: Record<string, string>;
  client: RegistryClient;
  onWarning?: (message: string) => void;
}

const CARRIES_ATTESTATIONS = (o: OutputSpec): boolean => o.type === 'oci' || o.type === 'registry';

/**
 * What to attach. Defaults follow buildx: with a push, an SBOM and `min` provenance; otherwise
 * nothing unless asked; and, like BUILDX_NO_DEFAULT_ATTESTATIONS, LADING_NO_DEFAULT_ATTESTATIONS=1
 * turns the defaults off. Asking for attestations no output can hold is an error; defaults that
 * cannot apply (Docker media types) are dropped with a warning.
 */
export function attestationSettings(options: BuildOptions, outputs: OutputSpec[], warn: (message: string) => void = () => {}, env: NodeJS.ProcessEnv = process.env): AttestationSettings | undefined {
  const noDefaults = (env.LADING_NO_DEFAULT_ATTESTATIONS ?? '') !== '' && env.LADING_NO_DEFAULT_ATTESTATIONS !== '0';
  const pushing = outputs.some((o) => o.type === 'registry') && !noDefaults;
  const attestAs = options.attestAs ?? 'index';
  if (attestAs !== 'index' && attestAs !== 'referrers') {
    throw new LadingError(ERROR_CODES.USAGE, `unknown attestation layout "${String(attestAs)}"`, { hint: 'use --attest-as index or --attest-as referrers' });
  }
  const provenance = options.provenance ?? (pushing ? 'min' : false);
  if (provenance !== false && provenance !== 'min' && provenance !== 'max') {
    throw new LadingError(ERROR_CODES.USAGE, `unknown provenance mode "${String(provenance)}"`, { hint: 'use --provenance=min, max or false' });
  }
  const settings: AttestationSettings = { sbom: options.sbom ?? pushing, provenance, attestAs };
  if (!settings.sbom && settings.provenance === false) return undefined;
  const explicit = options.sbom === true || (options.provenance !== undefined && options.provenance !== false);
  const what = [settings.sbom ? 'an SBOM' : '', settings.provenance ? 'provenance' : ''].filter(Boolean).join(' and ');
  if (options.format === 'docker') {
    if (!explicit) {
      warn(`no ${what} attached: attestation manifests need OCI media types and this build uses --format docker`);
      return undefined;
    }
    throw new LadingError(ERROR_CODES.USAGE, `${what} cannot be attached to an image with Docker media types`, {
      hint: 'drop --format docker (attestations need OCI manifests), or pass --sbom=false --provenance=false',
    });
  }
  if (!outputs.some(CARRIES_ATTESTATIONS)) {
    throw new LadingError(ERROR_CODES.USAGE, `${what} needs an output that can hold attestations`, {
      hint: 'add --push or --output type=oci,dest=DIR; docker and local outputs hold only the image',
    });
  }
  const archive = outputs.find((o) => o.type === 'oci' && (o.tar ?? o.dest.endsWith('.tar')));
  if (attestAs === 'referrers' && archive) {
    throw new LadingError(ERROR_CODES.USAGE, `--attest-as referrers cannot write into the OCI archive ${archive.type === 'oci' ? archive.dest : ''}`, {
      hint: 'write an OCI layout folder (type=oci,dest=DIR) or use --attest-as index, which an archive holds',
    });
  }
  return settings;
}

/**
 * The one step between building and writing: make the attestations, attach them (a new index, or
 * referrers written after the outputs that hold their subjects), and write the outputs with
 * `write`. Without attestations the built item goes to `write` unchanged.
 */
export async function withAttestations(
  built: Image | ImageIndex,
  input: AttestationInput,
  write: (item: Image | ImageIndex) => Promise<PushResult[]>,
): Promise<{ item: Image | ImageIndex; pushed: PushResult[] }> {
  const settings = attestationSettings(input.options, input.outputs, input.onWarning);
  if (!settings) return { item: built, pushed: await write(built) };
  const statements = await makeStatements(input, settings);
  if (settings.attestAs === 'index') {
    const item = attestationIndex(built, input.images.map((p) => p.image), statements, input.indexAnnotations);
    return { item, pushed: await write(item) };
  }
  const pushed = await write(built);
  const artifacts = input.images.flatMap((p, i) => statements[i]!.map((s) => referrerArtifact(p.image, s, input.epoch)));
  await writeReferrers(artifacts, input);
  return { item: built, pushed };
}

/**
 * Per platform (in the order of `input.images`), the statements asked for. Their subject is the
 * image manifest's digest alone, not the tags: an image keeps its digest whatever it is called, so
 * its attestations (and the index holding them) do too.
 */
export async function makeStatements(input: AttestationInput, settings: AttestationSettings): Promise<MadeStatement[][]> {
  const { options, epoch } = input;
  const { generateProvenance, generateSpdx, sbomStatement, scanLayers } = await import('../attest/index.ts');
  const created = attestationTimestamp(epoch);
  const provenanceCommon = settings.provenance ? await provenanceFacts(input) : undefined;
  const out: MadeStatement[][] = [];
  for (const [i, { image, platform }] of input.images.entries()) {
    const made: MadeStatement[] = [];
    if (settings.sbom) {
      // The image's own layers, each read once as a stream: never a second copy of the root.
      const layers = layersOf(image).map((descriptor) => ({ descriptor, open: () => image.blobs.open(descriptor) }));
      const scan = await scanLayers(layers, { signal: options.signal });
      for (const w of scan.warnings) input.onWarning?.(`SBOM of ${platform}: ${w}`);
      const spdx = generateSpdx(scan, { name: '', digest: image.digest, platform: parsePlatform(platform) }, { created });
      const statement = sbomStatement(spdx.document, { names: [], digest: image.digest });
      made.push({ predicateType: SPDX_PREDICATE_TYPE, artifactType: SPDX_MEDIA_TYPE, bytes: statement.bytes, digest: statement.digest });
    }
    if (settings.provenance && provenanceCommon) {
      const bases = dedupe(input.bases[i] ?? []).map((b) => ({ ...b, platform }));
      const statement = generateProvenance(
        {
          ...provenanceCommon,
          subject: { names: [], digest: image.digest },
          baseImages: bases,
          options: { ...provenanceCommon.options, platform },
        },
        settings.provenance,
      );
      made.push({ predicateType: SLSA_PROVENANCE_PREDICATE_TYPE, artifactType: INTOTO_MEDIA_TYPE, bytes: statement.bytes, digest: statement.digest });
    }
    out.push(made);
  }
  return out;
}

function dedupe(bases: { ref: string; digest: string }[]): { ref: string; digest: string }[] {
  const seen = new Set<string>();
  return bases.filter((b) => {
    const key = `${b.ref}\0${b.digest}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The parts of the provenance every platform shares. */
async function provenanceFacts(input: AttestationInput) {
  const { options, epoch, context } = input;
  const platforms = input.images.map((p) => p.platform);
  return {
    dockerfile: { path: dockerfilePath(options, context.root), digest: sha256(Buffer.from(input.dockerfile.text, 'utf8')) },
    ...(options.target ? { target: options.target } : {}),
    platforms,
    buildArgs: options.buildArgs ?? {},
    labels: options.labels ?? {},
    context: { digest: await contextDigest(context) },
    git: await gitSource(context.root),
    // What shaped the bytes besides the Dockerfile and context; no paths of this machine.
    options: {
      compression: options.compression ?? 'gzip',
      ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
      format: options.format ?? 'oci',
      sourceDateEpoch: epoch,
      noCache: options.noCache ?? false,
    } as Record<string, unknown>,
    sourceDateEpoch: epoch,
  };
}

/** The Dockerfile relative to the context, `/`-separated, so no path of this machine is recorded. */
function dockerfilePath(options: BuildOptions, contextRoot: string): string {
  if (!options.file) return 'Dockerfile';
  return path.relative(contextRoot, path.resolve(options.file)).split(path.sep).join('/');
}

/**
 * lading's digest of the build context as the build could see it: every entry `.dockerignore`
 * keeps, walked in the build's order, as `path, type, permission bits, link target, content
 * sha256`. Owners and times are left out (they differ between checkouts of the same source), so
 * the same files give the same digest on any machine. Content comes through the stat cache, so
 * an unchanged context is not read again.
 */
export async function contextDigest(context: BuildContext): Promise<string> {
  const root = await context.entry('');
  if (!root) throw new LadingError(ERROR_CODES.CONTEXT, `the build context ${context.root} disappeared during the build`);
  const entries = await context.walk(root);
  const lines = await Promise.all(
    entries.map(async (e) => {
      const content = e.type === 'file' ? await context.digest(e) : '';
      return `${e.rel}\t${e.type}\t${e.mode.toString(8)}\t${e.linkname ?? ''}\t${content}`;
    }),
  );
  await context.statCache.save();
  return sha256(`lading-context-v1\n${lines.join('\n')}\n`);
}

/** Blobs held in memory: the statements and the small configs that go with them. */
function memoryBlobs(blobs: Map<string, Buffer>): BlobSource {
  const get = (digest: string): Buffer => {
    const b = blobs.get(digest);
    if (!b) throw new LadingError(ERROR_CODES.INTERNAL, `attestation blob ${digest} is not held`);
    return b;
  };
  return { open: async (d) => Readable.from([get(d.digest)]), read: async (d) => get(d.digest) };
}

function statementLayer(s: MadeStatement): LayerDescriptor {
  return { mediaType: INTOTO_MEDIA_TYPE, digest: s.digest, size: s.bytes.length, diffID: s.digest, annotations: { [PREDICATE_TYPE_ANNOTATION]: s.predicateType } };
}

/** BuildKit's attestation manifest for one image: its statements as layers, an `unknown/unknown` config. */
export function attestationManifest(statements: MadeStatement[]): Image {
  const blobs = new Map(statements.map((s) => [s.digest, s.bytes]));
  const config: ImageConfig = { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [] } };
  return assembleImage({ config, layers: statements.map(statementLayer), format: 'oci', blobs: memoryBlobs(blobs) });
}

/** The image index with every image first, then one attestation manifest per image (BuildKit's order). */
export function attestationIndex(built: Image | ImageIndex, images: Image[], statements: MadeStatement[][], indexAnnotations: Record<string, string>): ImageIndex {
  const attestations = images.map((_, i) => attestationManifest(statements[i]!));
  const manifests: Descriptor[] = images.map(descriptorOf);
  attestations.forEach((att, i) => {
    manifests.push({
      mediaType: MediaType.OCI_MANIFEST,
      digest: att.digest,
      size: att.manifestBytes.length,
      annotations: { [REFERENCE_DIGEST_ANNOTATION]: images[i]!.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_MANIFEST },
      platform: { architecture: 'unknown', os: 'unknown' },
    });
  });
  const annotations = 'index' in built ? built.index.annotations : indexAnnotations;
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  if (annotations && Object.keys(annotations).length > 0) index.annotations = { ...annotations };
  const indexBytes = canonicalBytes(index);
  return { index, indexBytes, digest: sha256(indexBytes), images: [...images, ...attestations] };
}

/** An OCI 1.1 artifact holding one statement about `subject`. */
export function referrerArtifact(subject: Image, statement: MadeStatement, epoch: number): Image {
  const layer = statementLayer(statement);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    artifactType: statement.artifactType,
    config: EMPTY_CONFIG,
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: layer.annotations }],
    subject: { mediaType: subject.manifest.mediaType ?? MediaType.OCI_MANIFEST, digest: subject.digest, size: subject.manifestBytes.length },
    annotations: { [PREDICATE_TYPE_ANNOTATION]: statement.predicateType, 'org.opencontainers.image.created': attestationTimestamp(epoch) },
  };
  const manifestBytes = canonicalBytes(manifest);
  const configBytes = Buffer.from('{}');
  return {
    manifest,
    manifestBytes,
    digest: sha256(manifestBytes),
    // An artifact's config is the empty blob `{}`. This parsed form is never read as a config (push
    // and layouts use configBytes); its empty os and architecture keep a platform off descriptors.
    config: { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } },
    configBytes,
    blobs: memoryBlobs(new Map([[statement.digest, statement.bytes]])),
  };
}

/** Referrers go where their subjects went: each pushed repository, each OCI layout folder. */
async function writeReferrers(artifacts: Image[], input: AttestationInput): Promise<void> {
  for (const output of input.outputs) {
    if (output.type === 'oci') {
      await writeOciLayout(path.resolve(output.dest), artifacts.map((item) => ({ item })));
    } else if (output.type === 'registry') {
      const repositories = new Map<string, string>();
      for (const tag of input.tags) {
        const ref = parseReference(tag);
        repositories.set(`${ref.registry}/${ref.repository}`, `${ref.registry}/${ref.repository}`);
      }
      for (const repo of repositories.values()) {
        for (const artifact of artifacts) await input.client.pushReferrer(repo, artifact);
      }
    }
  }
}
