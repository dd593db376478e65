/**
 * A conformance case is a folder under fixtures/conformance/: `Dockerfile`, `case.json`, and the
 * build context in `context/` (kept apart so case.json is not part of what COPY . sees).
 * case.json says how to build and which differences from buildah are known and intended.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../test/helpers/busybox.ts';

export const CORPUS_DIR = path.join(REPO_ROOT, 'fixtures', 'conformance');

/** What differs at one path: present on one side only, or one property of an entry both have (`content` is size and digest). */
export type Aspect = 'only-buildah' | 'only-lading' | 'type' | 'mode' | 'uid' | 'gid' | 'content' | 'link' | 'rdev' | 'hardlink';

/** A difference that is expected, with the reason it is right (or at least not lading's bug). */
export type KnownDifference = {
  reason: string;
  /** When given, the value each side must have; otherwise any values match. Objects match as subsets. */
  buildah?: unknown;
  lading?: unknown;
} & (
  | { what: 'config'; field: string }
  /** `path` may use `*` (within one name) and `**` (any depth). Without `aspect`, every aspect matches. */
  | { what: 'fs'; path: string; aspect?: Aspect }
  | { what: 'layers' }
);

export interface CaseSpec {
  description: string;
  /** Kinds of real project it stands for (node, python, go, static, multistage, …). */
  tags: string[];
  /** Build arguments, given to both builders. */
  buildArgs?: Record<string, string>;
  target?: string;
  /**
   * A Dockerfile for buildah meaning what `Dockerfile` means to BuildKit, for syntax buildah 1.28
   * lacks (heredocs). Both builds must then give the same image.
   */
  buildahDockerfile?: { file: string; reason: string };
  /** Context adjustments git cannot store, applied to a temporary copy of context/. */
  prepare?: {
    /** path → octal mode */
    modes?: Record<string, string>;
    /** path → "uid:gid" */
    owners?: Record<string, string>;
    emptyDirs?: string[];
    /** new path → existing path */
    hardlinks?: Record<string, string>;
  };
  known?: KnownDifference[];
  /** Part of the subset `npm test` runs (the full corpus runs in `npm run conformance`). */
  ci?: boolean;
}

export interface Case {
  name: string;
  dir: string;
  spec: CaseSpec;
}

export function loadCases(corpusDir = CORPUS_DIR): Case[] {
  const cases: Case[] = [];
  for (const name of readdirSync(corpusDir).sort()) {
    const dir = path.join(corpusDir, name);
    if (!existsSync(path.join(dir, 'case.json'))) continue;
    const spec = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')) as CaseSpec;
    validate(name, dir, spec);
    cases.push({ name, dir, spec });
  }
  return cases;
}

/** Known differences that hold for every case (in fixtures/conformance/known.json). */
export function loadGlobalKnown(corpusDir = CORPUS_DIR): KnownDifference[] {
  const file = path.join(corpusDir, 'known.json');
  if (!existsSync(file)) return [];
  const known = (JSON.parse(readFileSync(file, 'utf8')) as { known: KnownDifference[] }).known;
  known.forEach((k, i) => checkKnown('known.json', i, k));
  return known;
}

function validate(name: string, dir: string, spec: CaseSpec): void {
  const fail = (msg: string): never => {
    throw new Error(`fixtures/conformance/${name}/case.json: ${msg}`);
  };
  if (typeof spec.description !== 'string' || spec.description === '') fail('needs a description');
  if (!Array.isArray(spec.tags) || spec.tags.length === 0) fail('needs tags');
  if (!existsSync(path.join(dir, 'Dockerfile'))) fail('has no Dockerfile beside it');
  // git keeps no empty folders: a case whose context is empty has none in a fresh checkout.
  if (!existsSync(path.join(dir, 'context'))) mkdirSync(path.join(dir, 'context'));
  if (spec.buildahDockerfile) {
    if (!spec.buildahDockerfile.reason) fail('buildahDockerfile needs a reason');
    if (!existsSync(path.join(dir, spec.buildahDockerfile.file))) fail(`${spec.buildahDockerfile.file} does not exist`);
  }
  (spec.known ?? []).forEach((k, i) => checkKnown(`${name}/case.json`, i, k));
}

function checkKnown(where: string, i: number, k: KnownDifference): void {
  const fail = (msg: string): never => {
    throw new Error(`fixtures/conformance/${where}: known[${i}] ${msg}`);
  };
  if (!k.reason || k.reason.length < 10) fail('needs a reason');
  if (k.what === 'config' && !k.field) fail('(config) needs a field');
  if (k.what === 'fs' && !k.path) fail('(fs) needs a path');
  if (!['config', 'fs', 'layers'].includes(k.what)) fail(`has an unknown "what": ${String((k as { what: unknown }).what)}`);
}
