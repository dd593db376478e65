/**
 * Validates OCI documents the way image-spec's own validator does: its JSON schemas (draft-04,
 * from ../shared/conformance/oci-image-spec) plus the checks its Go code makes beyond the
 * schemas: registered digest algorithms with exact lowercase hex, padded base64 `data`, `KEY=value`
 * config env entries, and `uri` formatted urls.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ajvDraft04Module from 'ajv-draft-04';
import ajvFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';
import { CONFORMANCE_DIR } from './conformance-data.ts';

export const CONFORMANCE = CONFORMANCE_DIR;
const SCHEMA_DIR = path.join(CONFORMANCE, 'oci-image-spec', 'schema');

const URIS: Record<string, string[]> = {
  'config-schema.json': ['https://opencontainers.org/schema/image/config'],
  'content-descriptor.json': ['https://opencontainers.org/schema/descriptor', 'https://opencontainers.org/schema/image/content-descriptor.json'],
  'defs-descriptor.json': [
    'https://opencontainers.org/schema/image/descriptor/mediaType',
    'https://opencontainers.org/schema/defs-descriptor.json',
    'https://opencontainers.org/schema/image/defs-descriptor.json',
  ],
  'defs.json': ['https://opencontainers.org/schema/defs.json', 'https://opencontainers.org/schema/image/defs.json', 'https://opencontainers.org/schema/image/descriptor/defs.json'],
  'image-index-schema.json': ['https://opencontainers.org/schema/image/index'],
  'image-layout-schema.json': ['https://opencontainers.org/schema/image/layout'],
  'image-manifest-schema.json': ['https://opencontainers.org/schema/image/manifest'],
};

export const SCHEMA_FOR_MEDIA_TYPE: Record<string, string> = {
  'application/vnd.oci.descriptor.v1+json': 'https://opencontainers.org/schema/descriptor',
  'application/vnd.oci.image.manifest.v1+json': 'https://opencontainers.org/schema/image/manifest',
  'application/vnd.oci.image.index.v1+json': 'https://opencontainers.org/schema/image/index',
  'application/vnd.oci.image.config.v1+json': 'https://opencontainers.org/schema/image/config',
  'application/vnd.oci.layout.header.v1+json': 'https://opencontainers.org/schema/image/layout',
};

/** Remove every `id`, so one schema can be registered under several URIs without clashes. */
function stripIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripIds);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'id') out[k] = stripIds(v);
    return out;
  }
  return value;
}

// Both packages are CommonJS with an `exports.default`; under NodeNext the class is `.default`.
const AjvDraft04 = ajvDraft04Module.default;
const addFormats = ajvFormatsModule.default;

let ajvInstance: InstanceType<typeof AjvDraft04> | undefined;
const compiled = new Map<string, ValidateFunction>();

function ajv(): InstanceType<typeof AjvDraft04> {
  if (ajvInstance) return ajvInstance;
  const a = new AjvDraft04({ allErrors: true, strict: false, validateFormats: true });
  addFormats(a);
  for (const [file, uris] of Object.entries(URIS)) {
    const schema = stripIds(JSON.parse(readFileSync(path.join(SCHEMA_DIR, file), 'utf8'))) as object;
    for (const uri of uris) a.addSchema(schema, uri);
  }
  ajvInstance = a;
  return a;
}

export interface ValidationResult {
  valid: boolean;
  errors: string[];
}

const DIGEST_ALGOS: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

/** Validate `document` (exact text) as `mediaType`. */
export function validateOci(mediaType: string, document: string): ValidationResult {
  const uri = SCHEMA_FOR_MEDIA_TYPE[mediaType];
  if (!uri) return { valid: false, errors: [`no schema for ${mediaType}`] };
  let validate = compiled.get(uri);
  if (!validate) {
    validate = ajv().getSchema(uri);
    if (!validate) return { valid: false, errors: [`schema ${uri} did not compile`] };
    compiled.set(uri, validate);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(document);
  } catch (err) {
    return { valid: false, errors: [`not JSON: ${(err as Error).message}`] };
  }
  const errors: string[] = [];
  if (!validate(doc)) errors.push(...(validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`));
  errors.push(...extraChecks(mediaType, doc));
  return { valid: errors.length === 0, errors };
}

function extraChecks(mediaType: string, doc: unknown): string[] {
  const errors: string[] = [];
  const checkDescriptor = (d: unknown, where: string): void => {
    if (!d || typeof d !== 'object') return;
    const desc = d as { digest?: unknown; data?: unknown };
    if (typeof desc.digest === 'string') {
      const [algo, hex] = desc.digest.split(':', 2);
      const re = algo ? DIGEST_ALGOS[algo] : undefined;
      if (re && !re.test(hex ?? '')) errors.push(`${where}.digest: invalid ${algo} digest ${desc.digest}`);
    }
    if (typeof desc.data === 'string' && !isPaddedBase64(desc.data)) errors.push(`${where}.data: not padded base64`);
  };
  const o = doc as Record<string, unknown>;
  if (mediaType === 'application/vnd.oci.descriptor.v1+json') checkDescriptor(o, '');
  if (mediaType === 'application/vnd.oci.image.manifest.v1+json') {
    checkDescriptor(o.config, 'config');
    (Array.isArray(o.layers) ? o.layers : []).forEach((l, i) => checkDescriptor(l, `layers[${i}]`));
    if (o.subject) checkDescriptor(o.subject, 'subject');
  }
  if (mediaType === 'application/vnd.oci.image.index.v1+json') {
    (Array.isArray(o.manifests) ? o.manifests : []).forEach((m, i) => checkDescriptor(m, `manifests[${i}]`));
    if (o.subject) checkDescriptor(o.subject, 'subject');
  }
  if (mediaType === 'application/vnd.oci.image.config.v1+json') {
    const env = (o.config as { Env?: unknown } | undefined)?.Env;
    if (Array.isArray(env)) env.forEach((e, i) => typeof e === 'string' && !/^[^=]+=.*$/.test(e) && errors.push(`config.Env[${i}]: not KEY=value`));
  }
  return errors;
}

function isPaddedBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}
