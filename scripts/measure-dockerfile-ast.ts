/**
 * How far does `dockerfile-ast` (the design card's choice) get on BuildKit's parser conformance data?
 *
 * `npx tsx scripts/measure-dockerfile-ast.ts [--diff]` prints one count per data set. It reads every instruction
 * through dockerfile-ast's public API, turns it into our InstructionNode with the most faithful
 * mapping we could find (raw property text, JSON strings, flags, ONBUILD triggers, heredoc ranges),
 * and prints it with our BuildKit dumper, so a miss is a miss of the library's structure or words,
 * not of the dump format. Our own parser is measured the same way beside it. The result and the
 * decision it led to are in docs/decisions.md ("Dockerfile parsing: dockerfile-ast vs our own").
 */
import fs from 'node:fs';
import path from 'node:path';
import ast from 'dockerfile-ast';
import type { Instruction } from 'dockerfile-ast';
import {
  dumpDockerfile,
  dumpNode,
  heredocsInLine,
  parseDockerfile,
  parseHeredocWord,
  type InstructionNode,
} from '../src/frontend/parser.ts';

const DATA = '/work/shared/conformance/buildkit-parser-testfiles';

interface Range {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/** The text of a range, counting lines as dockerfile-ast's TextDocument does (\r\n, \r or \n). */
function rangeText(text: string, range: Range): string {
  const starts = [0];
  for (const m of text.matchAll(/\r\n|\r|\n/g)) starts.push(m.index + m[0].length);
  const offset = (p: Range['start']): number => (starts[p.line] ?? text.length) + p.character;
  return text.slice(offset(range.start), offset(range.end));
}

/** One dockerfile-ast instruction as our node, mapped as closely to BuildKit's words as the API allows. */
function fromLibrary(text: string, instruction: Instruction): InstructionNode {
  // The library's classes are not all exported as types; `any` lets us call each subclass's getters.
  const inst = instruction as any;
  const keyword = instruction.getKeyword().toLowerCase();
  const flags: string[] = typeof inst.getFlags === 'function' ? inst.getFlags().map((f: { toString(): string }) => f.toString()) : [];
  const range = instruction.getRange() as Range;
  const node: InstructionNode = {
    keyword,
    original: instruction.getTextContent(),
    flags,
    args: [],
    argsText: instruction.getArgumentsContent() ?? '',
    json: false,
    heredocs: [],
    startLine: range.start.line + 1,
    endLine: range.end.line + 1,
    column: range.start.character + 1,
    comments: [],
  };
  const heredocs: { getName(): string; getContentRange(): Range | null; getStartRange(): Range }[] =
    typeof inst.getHeredocs === 'function' ? inst.getHeredocs() : [];
  // Arguments after a heredoc opener's line are its body, not words of the instruction.
  const firstBodyLine = heredocs.length > 0 ? heredocs[0]!.getStartRange().start.line : Number.POSITIVE_INFINITY;
  const args = instruction.getArguments().filter((a) => a.getRange().start.line <= firstBodyLine);
  const shellText = (): string =>
    heredocs.length > 0 ? args.map((a) => a.getValue()).join(' ') : (instruction.getArgumentsContent() ?? '');
  for (const h of heredocs) {
    const body = h.getContentRange();
    node.heredocs.push({ name: h.getName(), content: body ? `${rangeText(text, body)}\n` : '', expand: true, chomp: false, fileDescriptor: 0 });
  }

  const jsonStrings: { getJSONRange(): Range }[] | null =
    typeof inst.getJSONStrings === 'function' && inst.getOpeningBracket() && inst.getClosingBracket() ? inst.getJSONStrings() : null;
  if (keyword === 'onbuild') {
    const trigger = inst.getTriggerInstruction() as Instruction | null;
    if (trigger) node.next = fromLibrary(text, trigger);
  } else if (jsonStrings) {
    node.json = true;
    // getJSONValue() drops blanks inside strings ("test file" → "testfile"); decode the raw text instead.
    node.args = jsonStrings.map((s) => JSON.parse(`"${rangeText(text, s.getJSONRange())}"`) as string);
  } else if (keyword === 'env' || keyword === 'label') {
    for (const p of inst.getProperties() as { getName(): string; getValueRange(): Range | null; getAssignmentOperator(): string | null }[]) {
      const value = p.getValueRange();
      node.args.push(p.getName(), value ? rangeText(text, value) : '', p.getAssignmentOperator() ?? '');
    }
  } else if (keyword === 'healthcheck') {
    const sub = inst.getSubcommand()?.getValue() as string | undefined;
    if (sub !== undefined) {
      const rest = shellText().slice(shellText().indexOf(sub) + sub.length).trim();
      node.args = rest === '' ? [sub] : [sub, rest];
    }
  } else if (['run', 'cmd', 'entrypoint', 'shell', 'maintainer', 'user', 'workdir', 'stopsignal'].includes(keyword)) {
    const content = shellText();
    node.args = content === '' ? [] : [content];
  } else if (['from', 'expose', 'copy', 'add', 'volume', 'arg'].includes(keyword)) {
    // getValue() removes escape characters; BuildKit keeps words raw, so take the source text.
    node.args = args.map((a) => rangeText(text, a.getRange() as Range));
  } else {
    node.args = [''];
  }
  return node;
}

function libraryParse(text: string): InstructionNode[] {
  const dockerfile = ast.DockerfileParser.parse(text);
  return dockerfile.getInstructions().map((i) => fromLibrary(text, i));
}

/** What the library lets a caller detect of the negative cases: no instructions, a key without a value. */
function libraryRejects(text: string): boolean {
  const nodes = libraryParse(text);
  if (nodes.length === 0) return true;
  return nodes.some((n) => (n.keyword === 'env' || n.keyword === 'label') && n.args.length % 3 === 0 && n.args.some((a, i) => i % 3 === 1 && a === ''));
}

function oursRejects(text: string): boolean {
  try {
    parseDockerfile(text, 'Dockerfile');
    return false;
  } catch {
    return true;
  }
}

interface Tally {
  set: string;
  total: number;
  library: number;
  ours: number;
  misses: string[];
}

function measure(): Tally[] {
  const tallies: Tally[] = [];

  const positive: Tally = { set: 'testfiles (dump == result)', total: 0, library: 0, ours: 0, misses: [] };
  for (const name of fs.readdirSync(path.join(DATA, 'testfiles')).sort()) {
    const text = fs.readFileSync(path.join(DATA, 'testfiles', name, 'Dockerfile'), 'utf8');
    const want = fs.readFileSync(path.join(DATA, 'testfiles', name, 'result'), 'utf8').trim();
    positive.total++;
    const lib = libraryParse(text).map((n) => `(${dumpNode(n)})`).join('\n');
    if (lib === want) positive.library++;
    else positive.misses.push(name);
    if (dumpDockerfile(parseDockerfile(text, 'Dockerfile')) === want) positive.ours++;
  }
  tallies.push(positive);

  const negative: Tally = { set: 'testfiles-negative (rejected)', total: 0, library: 0, ours: 0, misses: [] };
  for (const name of fs.readdirSync(path.join(DATA, 'testfiles-negative')).sort()) {
    const text = fs.readFileSync(path.join(DATA, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    negative.total++;
    if (libraryRejects(text)) negative.library++;
    else negative.misses.push(name);
    if (oursRejects(text)) negative.ours++;
  }
  tallies.push(negative);

  const lineText = fs.readFileSync(path.join(DATA, 'testfile-line', 'Dockerfile'), 'utf8');
  const wantLines = '5-5 11-12 17-31';
  const spans = (nodes: InstructionNode[]): string => nodes.map((n) => `${n.startLine}-${n.endLine}`).join(' ');
  const libLines = spans(libraryParse(lineText));
  tallies.push({
    set: 'testfile-line (line spans)',
    total: 1,
    library: libLines === wantLines ? 1 : 0,
    ours: spans(parseDockerfile(lineText, 'Dockerfile').nodes) === wantLines ? 1 : 0,
    misses: libLines === wantLines ? [] : [`got ${libLines}`],
  });

  tallies.push(...measureHeredocs());
  return tallies;
}

interface HeredocExpectation {
  Name: string;
  Content: string;
  Expand: boolean;
  Chomp: boolean;
  FileDescriptor: number;
}

function measureHeredocs(): Tally[] {
  const vectors = JSON.parse(fs.readFileSync(path.join(DATA, 'heredoc-vectors.json'), 'utf8')) as {
    cases: {
      TestParseExtractsHeredoc: { dockerfile: string; expected: { astChildIndex: number; comment: string; heredocs: HeredocExpectation[] | null }[] };
      TestParseJSONHeredoc: { dockerfile: string };
      TestParseHeredocHelpers: { validHeredocs_nameIsEOF: string[]; invalidHeredocs_error: string[]; notHeredocs_nilNoError: string[] };
      TestHeredocsFromLine: { cases: { line: string; heredocNames: string[] | null }[] };
    };
  };
  const { TestParseExtractsHeredoc: extract, TestParseJSONHeredoc: jsonCase, TestParseHeredocHelpers: helpers, TestHeredocsFromLine: fromLine } = vectors.cases;

  // The library gives names and body ranges only: Expand, Chomp and FileDescriptor are compared as
  // BuildKit's defaults, which favours it. Node indices must line up, so a split instruction costs.
  const full = (hs: InstructionNode['heredocs']): string =>
    JSON.stringify(hs.map((h) => [h.name, h.content, h.expand, h.chomp, h.fileDescriptor]));
  const wantFull = (hs: HeredocExpectation[] | null): string =>
    JSON.stringify((hs ?? []).map((h) => [h.Name, h.Content, h.Expand, h.Chomp, h.FileDescriptor]));
  const libNodes = libraryParse(extract.dockerfile);
  const ourNodes = parseDockerfile(extract.dockerfile, 'Dockerfile').nodes;
  const extractTally: Tally = { set: 'heredoc TestParseExtractsHeredoc', total: 0, library: 0, ours: 0, misses: [] };
  for (const e of extract.expected) {
    extractTally.total++;
    const lib = libNodes[e.astChildIndex];
    if (lib && full(lib.heredocs) === wantFull(e.heredocs)) extractTally.library++;
    else extractTally.misses.push(e.comment);
    const ours = ourNodes[e.astChildIndex];
    if (ours && full(ours.heredocs) === wantFull(e.heredocs)) extractTally.ours++;
  }

  const jsonTally: Tally = { set: 'heredoc TestParseJSONHeredoc', total: 3, library: 0, ours: 0, misses: [] };
  const libJson = libraryParse(jsonCase.dockerfile);
  const ourJson = parseDockerfile(jsonCase.dockerfile, 'Dockerfile').nodes;
  for (const i of [1, 2, 3]) {
    if (libJson[i]?.json && libJson[i]!.heredocs.length === 0) jsonTally.library++;
    if (ourJson[i]?.json && ourJson[i]!.heredocs.length === 0) jsonTally.ours++;
  }

  // The library has no ParseHeredoc; the nearest is a one-line `RUN <word>` and its heredoc names.
  const libNames = (line: string): string[] => libraryParse(`${line}\n`)[0]?.heredocs.map((h) => h.name) ?? [];
  const helperTally: Tally = { set: 'heredoc TestParseHeredocHelpers', total: 0, library: 0, ours: 0, misses: [] };
  const ourWord = (word: string): string | null | 'error' => {
    try {
      return parseHeredocWord(word)?.name ?? null;
    } catch {
      return 'error';
    }
  };
  for (const word of helpers.validHeredocs_nameIsEOF) {
    helperTally.total++;
    if (libNames(`RUN ${word}`).join() === 'EOF') helperTally.library++;
    else helperTally.misses.push(word);
    if (ourWord(word) === 'EOF') helperTally.ours++;
  }
  for (const word of helpers.notHeredocs_nilNoError) {
    helperTally.total++;
    if (libNames(`RUN ${word}`).length === 0) helperTally.library++;
    else helperTally.misses.push(word);
    if (ourWord(word) === null) helperTally.ours++;
  }
  for (const word of helpers.invalidHeredocs_error) {
    helperTally.total++;
    helperTally.misses.push(`${word} (no error API)`);
    if (ourWord(word) === 'error') helperTally.ours++;
  }

  const lineTally: Tally = { set: 'heredoc TestHeredocsFromLine', total: 0, library: 0, ours: 0, misses: [] };
  for (const c of fromLine.cases) {
    lineTally.total++;
    const want = (c.heredocNames ?? []).join();
    if (libNames(c.line).join() === want) lineTally.library++;
    else lineTally.misses.push(c.line);
    if (heredocsInLine(c.line).map((h) => h.name).join() === want) lineTally.ours++;
  }
  return [extractTally, jsonTally, helperTally, lineTally];
}

/** `--diff`: every testfiles line where the library's dump differs from BuildKit's. */
function printDiffs(): void {
  for (const name of fs.readdirSync(path.join(DATA, 'testfiles')).sort()) {
    const text = fs.readFileSync(path.join(DATA, 'testfiles', name, 'Dockerfile'), 'utf8');
    const want = fs.readFileSync(path.join(DATA, 'testfiles', name, 'result'), 'utf8').trim().split('\n');
    const got = libraryParse(text).map((n) => `(${dumpNode(n)})`);
    for (let i = 0; i < Math.max(want.length, got.length); i++) {
      if (want[i] !== got[i]) console.log(`${name}\n  want ${want[i]}\n  got  ${got[i]}`);
    }
  }
}

const tallies = measure();
console.log('| data set | cases | dockerfile-ast 0.7.1 | ours |');
console.log('| --- | --- | --- | --- |');
for (const t of tallies) console.log(`| ${t.set} | ${t.total} | ${t.library} | ${t.ours} |`);
for (const t of tallies) if (t.misses.length > 0) console.log(`\ndockerfile-ast misses in ${t.set}:\n  ${t.misses.join('\n  ')}`);
if (process.argv.includes('--diff')) printDiffs();
