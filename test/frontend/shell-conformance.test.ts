/**
 * BuildKit's own shell-lexer vectors (shared/conformance/buildkit-shell-lex), read at run time:
 * envVarTest through processWord, wordsTest through processWords. One test per vector, titled by
 * its line and input (inputs repeat in the files, and ava needs unique titles).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LadingError } from '../../src/errors.ts';
import { ShellLex } from '../../src/frontend/shell.ts';
import { CONFORMANCE_DIR } from '../helpers/conformance-data.ts';

const DIR = path.join(CONFORMANCE_DIR, 'buildkit-shell-lex');

// The environment BuildKit's TestShellParser4EnvVars uses.
const ENV_VAR_TEST_ENV = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['NULL', ''],
]);

const envVarLines = readFileSync(path.join(DIR, 'envVarTest'), 'utf8').split('\n');
let envVarCount = 0;
let windowsOnly = 0;
envVarLines.forEach((raw, index) => {
  if (raw.startsWith('#')) return;
  const line = raw.trim();
  if (line === '') return;
  const fields = line.split('|');
  if (fields.length !== 3) throw new Error(`envVarTest:${index + 1}: expected 3 fields, got ${fields.length}`);
  const [platform, source, expected] = fields.map((f) => f.trim()) as [string, string, string];
  // W lines assume Windows' case-insensitive environment; lading builds Linux images only.
  if (platform === 'W') {
    windowsOnly++;
    test.skip(`envVarTest:${index + 1} (windows only) ${source}`, () => {});
    return;
  }
  if (platform !== 'A' && platform !== 'U') throw new Error(`envVarTest:${index + 1}: bad platform ${platform}`);
  envVarCount++;
  test(`envVarTest:${index + 1} ${source}`, (t) => {
    const lex = new ShellLex('\\');
    if (expected === 'error') {
      const err = t.throws(() => lex.processWord(source, ENV_VAR_TEST_ENV));
      t.true(err instanceof LadingError, 'errors are LadingErrors');
      t.is((err as LadingError).code, 'DOCKERFILE_INVALID');
    } else {
      t.is(lex.processWord(source, ENV_VAR_TEST_ENV).value, expected);
    }
  });
});

// wordsTest: `ENV k=v` lines accumulate (a later value wins), others are `input|w1,w2,...`.
const wordsLines = readFileSync(path.join(DIR, 'wordsTest'), 'utf8').split('\n');
const wordsEnv = new Map<string, string>();
let wordsCount = 0;
wordsLines.forEach((line, index) => {
  if (line.startsWith('#') || line === '') return;
  if (line.startsWith('ENV ')) {
    const assignment = line.slice(3).replace(/^ +/, '');
    const eq = assignment.indexOf('=');
    if (eq < 0) wordsEnv.set(assignment, '');
    else wordsEnv.set(assignment.slice(0, eq), assignment.slice(eq + 1));
    return;
  }
  const fields = line.split('|');
  if (fields.length !== 2) throw new Error(`wordsTest:${index + 1}: expected exactly one |`);
  const input = fields[0]!.trim();
  const expected = fields[1]!.replace(/^ +/, '').split(',');
  const env = new Map(wordsEnv);
  wordsCount++;
  test(`wordsTest:${index + 1} ${input}`, (t) => {
    const lex = new ShellLex('\\');
    if (expected.length === 1 && expected[0] === 'error') {
      const err = t.throws(() => lex.processWords(input, env));
      t.true(err instanceof LadingError);
    } else {
      t.deepEqual(lex.processWords(input, env).words, expected);
    }
  });
});

test('every vector file was read and counted', (t) => {
  t.is(envVarCount, 228, 'envVarTest A and U lines');
  t.is(windowsOnly, 2, 'envVarTest W lines (skipped)');
  t.is(wordsCount, 24, 'wordsTest cases');
});
