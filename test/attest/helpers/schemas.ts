/** ajv validators for the attestation schemas in test/attest/data (see SOURCES.md there). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ajvModule, { type ValidateFunction } from 'ajv';
import ajvFormatsModule from 'ajv-formats';

const DATA = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'data');
// Both packages are CommonJS with an `exports.default`; under NodeNext the class is `.default`.
const Ajv = ajvModule.default;
const addFormats = ajvFormatsModule.default;

const load = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(DATA, name), 'utf8')) as Record<string, unknown>;

let validators: { spdx: ValidateFunction; statement: ValidateFunction; provenance: ValidateFunction } | undefined;

export function schemaValidators(): { spdx: ValidateFunction; statement: ValidateFunction; provenance: ValidateFunction } {
  if (validators) return validators;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addSchema(load('in-toto-statement-v1.schema.json'));
  ajv.addSchema(load('slsa-provenance-v1.schema.json'));
  validators = {
    spdx: ajv.compile(load('spdx-schema-2.3.json')),
    statement: ajv.getSchema('https://lading.dev/test-schemas/in-toto-statement-v1.json')!,
    provenance: ajv.getSchema('https://lading.dev/test-schemas/slsa-provenance-v1.json')!,
  };
  return validators;
}

/** ajv's errors as one readable string (empty when valid). */
export function errorsOf(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');
}
