import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sha256 } from '../../src/image/digest.ts';
import { CONFORMANCE, validateOci } from '../helpers/oci-validator.ts';

const base = path.join(CONFORMANCE, 'oci-image-spec');

interface Vector {
  test: string;
  comment: string;
  mediaType: string;
  document: string;
  expectFail: boolean;
  expectedDigestOfDocument?: string;
}

const vectorFiles = [
  'descriptor-vectors.json',
  'manifest-vectors.json',
  'imageindex-vectors.json',
  'config-vectors.json',
  'imagelayout-vectors.json',
  'backwards_compatibility-vectors.json',
];
let count = 0;
for (const file of vectorFiles) {
  const { vectors } = JSON.parse(readFileSync(path.join(base, 'schema-vectors', file), 'utf8')) as { vectors: Vector[] };
  vectors.forEach((v, i) => {
    count++;
    test(`schema vector ${file} #${i}: ${v.comment}`, (t) => {
      const result = validateOci(v.mediaType, v.document);
      t.is(result.valid, !v.expectFail, result.errors.join('; '));
      // Digests name exact bytes: hashing the document as given must reproduce upstream's digest.
      if (v.expectedDigestOfDocument) t.is(sha256(v.document), v.expectedDigestOfDocument);
    });
  });
}

test('all 69 upstream schema vectors are exercised', (t) => {
  t.is(count, 69);
});

const examples = JSON.parse(readFileSync(path.join(base, 'examples', 'index.json'), 'utf8')) as { file: string; mediaType: string; expectValid: boolean }[];
for (const ex of examples) {
  test(`spec example ${ex.file} validates`, (t) => {
    const result = validateOci(ex.mediaType, readFileSync(path.join(base, 'examples', ex.file), 'utf8'));
    t.is(result.valid, ex.expectValid, result.errors.join('; '));
  });
}
