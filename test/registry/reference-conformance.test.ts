/**
 * Every case of distribution/reference's table tests (extracted to shared/conformance) against our
 * parser. A vector group we do not run would be a silent gap, so the last test checks that each
 * group in the file was seen.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LadingError } from '../../src/errors.ts';
import {
  DigestReference,
  DOMAIN_RE,
  IDENTIFIER_RE,
  NAME_RE,
  REFERENCE_RE,
  familiarMatch,
  familiarName,
  familiarString,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  parseReference,
  withDigest,
  withName,
  withTag,
  type Reference,
} from '../../src/registry/reference.ts';
import { CONFORMANCE_DIR } from '../helpers/conformance-data.ts';

const vectors = JSON.parse(readFileSync(path.join(CONFORMANCE_DIR, 'reference-vectors.json'), 'utf8')) as {
  errorNames: Record<string, string>;
  cases: Record<string, Record<string, unknown>>;
};
const groups = vectors.cases;
const seen = new Set<string>();
function group<T>(name: string, key = 'cases'): T {
  seen.add(name);
  return groups[name]![key] as T;
}

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof LadingError)) throw err;
    return String(err.details.reason);
  }
}

interface ParseCase { input: string; err?: string; domain?: string; repository?: string; tag?: string; digest?: string }

test('Parse: every vector', (t) => {
  for (const c of group<ParseCase[]>('Parse')) {
    const label = JSON.stringify(c.input.slice(0, 60));
    if (c.err) {
      t.is(reasonOf(() => parse(c.input)), c.err, label);
      continue;
    }
    const ref = parse(c.input);
    t.is(ref.toString(), c.input, `${label} round-trips`);
    t.is<string | undefined, string | undefined>(ref.name, c.repository, `${label} name`);
    t.is(ref.domain, c.domain ?? '', `${label} domain`);
    t.is(ref.tag, c.tag, `${label} tag`);
    t.is(ref.digest, c.digest, `${label} digest`);
  }
});

test('error messages are distribution/reference texts', (t) => {
  const err = t.throws(() => parse('Uppercase:tag'), { instanceOf: LadingError });
  t.true(err.message.includes(vectors.errorNames.ErrNameContainsUppercase!));
  t.is(err.code, 'REFERENCE');
});

test('WithName failures', (t) => {
  for (const c of group<{ input: string; err: string }[]>('WithNameFailure')) {
    t.is(reasonOf(() => withName(c.input)), c.err, c.input.slice(0, 60));
  }
});

test('Domain and path without normalisation', (t) => {
  for (const c of group<{ input: string; domain: string; path: string }[]>('DomainAndPath')) {
    const ref = withName(c.input);
    t.is(ref.domain, c.domain, c.input);
    t.is(ref.path, c.path, c.input);
  }
});

test('WithTag', (t) => {
  for (const c of group<{ name: string; tag: string; digest?: string; combined: string }[]>('WithTag')) {
    let ref: Reference = withName(c.name);
    if (c.digest) ref = withDigest(ref, c.digest);
    t.is(withTag(ref, c.tag).toString(), c.combined);
  }
});

test('WithDigest', (t) => {
  for (const c of group<{ name: string; tag?: string; digest: string; combined: string }[]>('WithDigest')) {
    let ref: Reference = withName(c.name);
    if (c.tag) ref = withTag(ref, c.tag);
    t.is(withDigest(ref, c.digest).toString(), c.combined);
  }
});

test('ParseNamed accepts only canonical names', (t) => {
  for (const c of group<{ input: string; err?: string; domain?: string; path?: string }[]>('ParseNamed')) {
    if (c.err) {
      t.is(reasonOf(() => parseNamed(c.input)), c.err, c.input);
      continue;
    }
    const ref = parseNamed(c.input);
    t.is<string | undefined, string | undefined>(ref.domain, c.domain, c.input);
    t.is<string | undefined, string | undefined>(ref.path, c.path, c.input);
  }
});

test('Serialization cases', (t) => {
  for (const c of group<{ input?: string; err?: string; name?: string; tag?: string; digest?: string }[]>('Serialization')) {
    const input = c.input ?? '';
    if (c.err) {
      t.is(reasonOf(() => parse(input)), c.err);
      continue;
    }
    const ref = parse(input);
    t.is<string | undefined, string | undefined>(ref.name, c.name);
    t.is(ref.tag, c.tag);
    t.is(ref.digest, c.digest);
    t.is(JSON.stringify(ref), JSON.stringify(input));
  }
});

for (const name of ['ValidateReferenceName', 'ValidateRemoteName']) {
  test(`${name}: valid and invalid names`, (t) => {
    for (const s of group<string[]>(name, 'valid')) t.notThrows(() => parseNormalizedNamed(s), s);
    for (const s of group<string[]>(name, 'invalid')) t.throws(() => parseNormalizedNamed(s), { instanceOf: LadingError }, s.slice(0, 60));
  });
}

test('ParseRepositoryInfo: familiar, full and ambiguous spellings agree', (t) => {
  type Info = { RemoteName: string; FamiliarName: string; FullName: string; AmbiguousName: string; Domain: string };
  for (const c of group<Info[]>('ParseRepositoryInfo')) {
    for (const input of [c.FamiliarName, c.FullName, c.AmbiguousName].filter(Boolean)) {
      const ref = parseNormalizedNamed(input);
      t.is(familiarName(ref), c.FamiliarName, input);
      t.is(ref.toString(), c.FullName, input);
      t.is(ref.domain, c.Domain, input);
      t.is(ref.path, c.RemoteName, input);
    }
  }
});

test('tag and digest together', (t) => {
  seen.add('ParseReferenceWithTagAndDigest');
  const c = groups.ParseReferenceWithTagAndDigest as { input: string; expectedString: string; expectedFamiliarString: string };
  const ref = parseNormalizedNamed(c.input);
  t.is(ref.toString(), c.expectedString);
  t.is(familiarString(ref), c.expectedFamiliarString);
  t.truthy(ref.tag);
  t.truthy(ref.digest);
});

test('invalid components', (t) => {
  const cases = group<{ call: string }[]>('InvalidReferenceComponents');
  t.is(cases.length, 3);
  t.throws(() => parseNormalizedNamed('-foo'));
  t.throws(() => withTag(parseNormalizedNamed('busybox'), '-foo'));
  t.throws(() => withDigest(parseNormalizedNamed('busybox'), 'foo'));
});

test('ParseAnyReference', (t) => {
  for (const c of group<{ Reference: string; Equivalent: string; Expected?: string }[]>('ParseAnyReference')) {
    const ref = parseAnyReference(c.Reference);
    t.is(ref.toString(), c.Equivalent, c.Reference);
    if (c.Expected) {
      t.true(ref instanceof DigestReference, c.Reference);
      t.is((ref as DigestReference).digest, c.Expected);
    } else t.false(ref instanceof DigestReference, c.Reference);
  }
});

test('normalised split of domain and path', (t) => {
  for (const c of group<{ input: string; domain: string; path: string }[]>('NormalizedSplitHostname')) {
    const ref = parseNormalizedNamed(c.input);
    t.is(ref.domain, c.domain, c.input);
    t.is(ref.path, c.path, c.input);
  }
});

test('FamiliarMatch', (t) => {
  for (const c of group<{ reference: string; pattern: string; expected: boolean }[]>('FamiliarMatch')) {
    t.is(familiarMatch(c.pattern, parseAnyReference(c.reference)), c.expected, `${c.pattern} ~ ${c.reference}`);
  }
  const e = groups.FamiliarMatch!.errorCase as { pattern: string; reference: string };
  t.throws(() => familiarMatch(e.pattern, parseAnyReference(e.reference)));
});

test('ParseDockerRef', (t) => {
  for (const c of group<{ name: string; input: string; expected: string }[]>('ParseDockerRef')) {
    t.is(parseDockerRef(c.input).toString(), c.expected, c.name);
  }
});

test('domain regexp', (t) => {
  for (const c of group<{ input: string; match: boolean }[]>('DomainRegexp')) t.is(DOMAIN_RE.test(c.input), c.match, c.input);
});

test('full name regexp with its groups', (t) => {
  for (const c of group<{ input: string; match: boolean; subs?: string[] }[]>('FullNameRegexp')) {
    const m = NAME_RE.exec(c.input);
    t.is(m !== null, c.match, c.input.slice(0, 60));
    if (m && c.subs) t.deepEqual([m[1] ?? '', m[2]], c.subs, c.input.slice(0, 60));
  }
});

test('reference regexp with its groups', (t) => {
  for (const c of group<{ input: string; match: boolean; subs?: string[] }[]>('ReferenceRegexp')) {
    const m = REFERENCE_RE.exec(c.input);
    t.is(m !== null, c.match, c.input);
    if (m && c.subs) t.deepEqual([m[1], m[2] ?? '', m[3] ?? ''], c.subs, c.input);
  }
});

test('identifier regexp', (t) => {
  for (const c of group<{ input: string; match: boolean }[]>('IdentifierRegexp')) t.is(IDENTIFIER_RE.test(c.input), c.match, c.input);
});

test('parseReference: what lading calls', (t) => {
  const r = parseReference('busybox');
  t.is(r.toString(), 'docker.io/library/busybox:latest');
  t.is(r.familiar(), 'busybox:latest');
  t.is(r.registry, 'docker.io');
  t.is(r.repository, 'library/busybox');
  t.is(r.identifier, 'latest');
  const d = parseReference('localhost:5000/app:v1@sha256:' + 'a'.repeat(64));
  t.is(d.registry, 'localhost:5000');
  t.is(d.tag, 'v1');
  t.is(d.identifier, 'sha256:' + 'a'.repeat(64));
  t.is(parseReference('ghcr.io/acme/app@sha256:' + 'b'.repeat(64)).tag, undefined);
  t.is(parseReference('index.docker.io/acme/app').toString(), 'docker.io/acme/app:latest');
  t.is(parseReference('[::1]:5000/app').registry, '[::1]:5000');
  t.throws(() => parseReference('Acme/App'), { code: 'REFERENCE' } as never);
});

test('every vector group was run', (t) => {
  t.deepEqual([...Object.keys(groups)].filter((g) => !seen.has(g)), []);
});
