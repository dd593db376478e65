/**
 * BuildKit's own parser test data (dockerfile/1.26.0), read-only under /work/shared/conformance:
 * every testfile's dump must equal its `result`, every negative case must be rejected with a
 * location, testfile-line must keep BuildKit's line spans, and every heredoc vector must hold.
 * See SOURCES.md there for where each piece comes from and how BuildKit's tests use it.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../../src/errors.ts';
import {
  chompHeredocContent,
  dumpDockerfile,
  heredocsInLine,
  parseDockerfile,
  parseHeredocWord,
  type Heredoc,
} from '../../src/frontend/parser.ts';
import { CONFORMANCE_DIR } from '../helpers/conformance-data.ts';

const DATA = path.join(CONFORMANCE_DIR, 'buildkit-parser-testfiles');
const read = (...parts: string[]): string => fs.readFileSync(path.join(DATA, ...parts), 'utf8');
const cases = (folder: string): string[] => fs.readdirSync(path.join(DATA, folder)).sort();

test('the conformance data is where we expect it', (t) => {
  t.is(cases('testfiles').length, 33);
  t.is(cases('testfiles-negative').length, 4);
});

for (const name of cases('testfiles')) {
  test(`testfiles/${name}: dump equals BuildKit's result`, (t) => {
    const parsed = parseDockerfile(read('testfiles', name, 'Dockerfile'), 'Dockerfile');
    // BuildKit's test trims the dump and compares it with the file plus a newline.
    t.is(`${dumpDockerfile(parsed)}\n`, read('testfiles', name, 'result'));
  });
}

for (const name of cases('testfiles-negative')) {
  test(`testfiles-negative/${name}: rejected with file:line`, (t) => {
    const err = t.throws(() => parseDockerfile(read('testfiles-negative', name, 'Dockerfile'), 'Dockerfile'), {
      instanceOf: LadingError,
    });
    t.is(err.code, ERROR_CODES.DOCKERFILE_PARSE);
    t.is(err.location?.file, 'Dockerfile');
    t.true((err.location?.line ?? 0) >= 1);
    t.regex(err.headline(), /^Dockerfile:\d+:\d+: /);
    t.truthy(err.hint);
  });
}

test('testfiles-negative: each is rejected for the reason BuildKit gives, on the right line', (t) => {
  const reason = (name: string): [string, number | undefined] => {
    const err = t.throws(() => parseDockerfile(read('testfiles-negative', name, 'Dockerfile'), 'Dockerfile'), { instanceOf: LadingError });
    return [err.message, err.location?.line];
  };
  t.deepEqual(reason('empty_dockerfile'), ['file with no instructions', 1]);
  t.deepEqual(reason('only_comments'), ['file with no instructions', 3]);
  t.deepEqual(reason('env_no_value'), ['ENV must have two arguments', 3]);
  t.deepEqual(reason('shykes-nested-json'), ['when using JSON array syntax, arrays must be comprised of strings only', 1]);
});

test('testfile-line: instructions span BuildKit’s lines (AST 5–31; [5,5], [11,12], [17,31])', (t) => {
  const { nodes } = parseDockerfile(read('testfile-line', 'Dockerfile'), 'Dockerfile');
  t.deepEqual(
    nodes.map((n) => [n.startLine, n.endLine]),
    [
      [5, 5],
      [11, 12],
      [17, 31],
    ],
  );
  t.is(nodes[0]!.startLine, 5);
  t.is(nodes.at(-1)!.endLine, 31);
});

interface HeredocExpectation {
  Name: string;
  Content: string;
  Expand: boolean;
  Chomp: boolean;
  FileDescriptor: number;
}

interface Vectors {
  cases: {
    TestParseExtractsHeredoc: {
      dockerfile: string;
      expected: { astChildIndex: number; comment: string; heredocs: HeredocExpectation[] | null }[];
    };
    TestParseJSONHeredoc: { dockerfile: string; expected: string };
    TestHeredocChomp: { input: string; expected: string };
    TestParseHeredocHelpers: { validHeredocs_nameIsEOF: string[]; invalidHeredocs_error: string[]; notHeredocs_nilNoError: string[] };
    TestHeredocsFromLine: { cases: { line: string; heredocNames: string[] | null }[] };
  };
}

const vectors = JSON.parse(read('heredoc-vectors.json')) as Vectors;

/** The vector's Go field names mapped onto our Heredoc (BuildKit's nil list is our empty one). */
function expected(list: HeredocExpectation[] | null): Heredoc[] {
  return (list ?? []).map((h) => ({
    name: h.Name,
    content: h.Content,
    expand: h.Expand,
    chomp: h.Chomp,
    fileDescriptor: h.FileDescriptor,
  }));
}

test('heredoc vectors: TestParseExtractsHeredoc, every AST child', (t) => {
  const { dockerfile, expected: rows } = vectors.cases.TestParseExtractsHeredoc;
  const { nodes } = parseDockerfile(dockerfile, 'Dockerfile');
  t.is(nodes.length, 28);
  t.is(rows.length, 27);
  for (const row of rows) {
    const node = nodes[row.astChildIndex];
    t.truthy(node, row.comment);
    t.deepEqual(node!.heredocs, expected(row.heredocs), `child ${row.astChildIndex} (${row.comment})`);
  }
});

test('heredoc vectors: TestParseJSONHeredoc, exec form never opens heredocs', (t) => {
  const { nodes } = parseDockerfile(vectors.cases.TestParseJSONHeredoc.dockerfile, 'Dockerfile');
  t.is(nodes.length, 4);
  for (const node of nodes.slice(1)) {
    t.true(node.json, node.original);
    t.deepEqual(node.heredocs, [], node.original);
  }
  t.deepEqual(nodes[2]!.args, ['<<EOF']);
});

test('heredoc vectors: TestHeredocChomp', (t) => {
  const { input, expected: want } = vectors.cases.TestHeredocChomp;
  t.is(chompHeredocContent(input), want);
});

test('heredoc vectors: TestParseHeredocHelpers, valid words name EOF', (t) => {
  const { validHeredocs_nameIsEOF: words } = vectors.cases.TestParseHeredocHelpers;
  t.is(words.length, 9);
  for (const word of words) t.is(parseHeredocWord(word)?.name, 'EOF', word);
});

test('heredoc vectors: TestParseHeredocHelpers, unclosed quotes are errors', (t) => {
  const { invalidHeredocs_error: words } = vectors.cases.TestParseHeredocHelpers;
  t.is(words.length, 4);
  for (const word of words) {
    const err = t.throws(() => parseHeredocWord(word), { instanceOf: LadingError }, word);
    t.is(err.code, ERROR_CODES.DOCKERFILE_PARSE);
  }
});

test('heredoc vectors: TestParseHeredocHelpers, non-heredocs are null without error', (t) => {
  const { notHeredocs_nilNoError: words } = vectors.cases.TestParseHeredocHelpers;
  t.is(words.length, 7);
  for (const word of words) t.is(parseHeredocWord(word), null, JSON.stringify(word));
});

test('heredoc vectors: TestHeredocsFromLine', (t) => {
  const { cases: lines } = vectors.cases.TestHeredocsFromLine;
  t.is(lines.length, 10);
  for (const { line, heredocNames } of lines) {
    t.deepEqual(
      heredocsInLine(line).map((h) => h.name),
      heredocNames ?? [],
      line,
    );
  }
});
