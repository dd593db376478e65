/**
 * Our own cases for the Dockerfile parser, beyond BuildKit's data: error reports, parser directives,
 * CRLF and BOM, continuations, heredocs, flags, and the positions other modules point users at.
 * Expected values follow BuildKit's rules as its test data and documentation show them.
 */
import test, { type ExecutionContext } from 'ava';
import { ERROR_CODES, LadingError } from '../../src/errors.ts';
import { chompHeredocContent, dumpDockerfile, dumpNode, parseDockerfile, type ParsedDockerfile } from '../../src/frontend/parser.ts';

const parse = (text: string): ParsedDockerfile => parseDockerfile(text, 'Dockerfile');
const dump = (text: string): string => dumpDockerfile(parse(text));
const reject = (t: ExecutionContext, text: string): LadingError => {
  const err = t.throws(() => parse(text), { instanceOf: LadingError });
  t.is(err.code, ERROR_CODES.DOCKERFILE_PARSE);
  return err;
};

// ----- errors -----------------------------------------------------------------------------------

test('an error names file:line:col, shows the offending line and says what to do', (t) => {
  const err = reject(t, 'FROM alpine\n\n  ENV PATH\n');
  t.is(err.message, 'ENV must have two arguments');
  t.deepEqual(err.location, { file: 'Dockerfile', line: 3, column: 3, text: '  ENV PATH' });
  t.regex(err.hint ?? '', /ENV NAME=value/);
  const text = err.describe();
  t.true(text.startsWith('Dockerfile:3:3: ENV must have two arguments'));
  t.true(text.includes('  |   ENV PATH'));
  t.true(text.includes('hint: '));
});

test('the file name given is the one reported', (t) => {
  const err = t.throws(() => parseDockerfile('FROM a\nCMD [1]\n', 'build/Containerfile'), { instanceOf: LadingError });
  t.is(err.headline(), 'build/Containerfile:2:1: when using JSON array syntax, arrays must be comprised of strings only');
});

test('several problems in one pass: the first is thrown, the others are related, in file order', (t) => {
  const err = reject(t, 'FROM a\nENV A\nLABEL b\nCMD ["x", ["y"]]\nENV a=1 b\nRUN ok\n');
  t.deepEqual(
    [err, ...err.related].map((e) => [e.location?.line, e.message]),
    [
      [2, 'ENV must have two arguments'],
      [3, 'LABEL must have two arguments'],
      [4, 'when using JSON array syntax, arrays must be comprised of strings only'],
      [5, 'Syntax error - can\'t find = in "b". Must be of the form: name=value'],
    ],
  );
  for (const e of err.related) {
    t.is(e.code, ERROR_CODES.DOCKERFILE_PARSE);
    t.truthy(e.hint);
  }
  t.is(err.describe().split('\n').filter((l) => l.startsWith('Dockerfile:')).length, 4);
});

test('an unterminated heredoc points at its opener and explains the terminator rule', (t) => {
  const err = reject(t, 'FROM a\nRUN cat <<EOF\nhello\n  EOF\n');
  t.is(err.message, 'unterminated heredoc: no line "EOF" ends the here-document');
  t.deepEqual(err.location, { file: 'Dockerfile', line: 2, column: 9, text: 'RUN cat <<EOF' });
  t.regex(err.hint ?? '', /exactly "EOF".*column 1/);
});

test('an unterminated <<- heredoc says tabs (not spaces) may indent the terminator', (t) => {
  const err = reject(t, 'FROM a\nRUN <<-EOF\n\tx\n    EOF\n');
  t.regex(err.hint ?? '', /tabs, not spaces/);
});

test('an unterminated heredoc opened on a continuation line is located there', (t) => {
  const err = reject(t, 'FROM a\nRUN set -e; \\\n  cat <<EOF\nbody\n');
  t.is(err.location?.line, 3);
  t.is(err.location?.column, 7);
});

test('only one of each directive; a bad escape token is an error', (t) => {
  const twice = reject(t, '# syntax=a\n# SYNTAX=b\nFROM x\n');
  t.is(twice.message, 'only one syntax parser directive can be used');
  t.is(twice.location?.line, 2);
  const bad = reject(t, '# escape=|\nFROM x\n');
  t.is(bad.message, "invalid escape token '|' does not match ` or \\");
  t.deepEqual(bad.location, { file: 'Dockerfile', line: 1, column: 1, text: '# escape=|' });
});

test('an empty file, or one of comments and blank lines, has no instructions', (t) => {
  t.is(reject(t, '').message, 'file with no instructions');
  t.is(reject(t, '\ufeff').message, 'file with no instructions');
  const err = reject(t, '# syntax=docker/dockerfile:1\n\n   \n# nothing\n');
  t.is(err.location?.line, 4);
  t.regex(err.hint ?? '', /FROM/);
});

test('an unknown instruction is not a parse error: it stays a node for instructions.ts to reject', (t) => {
  const { nodes } = parse('FROM a\nFORM b c\n');
  t.is(nodes[1]!.keyword, 'form');
  t.deepEqual(nodes[1]!.args, ['']);
  t.is(nodes[1]!.argsText, 'b c');
  t.is(dumpNode(nodes[1]!), 'form ""');
  // Keywords are not looked up on an object's prototype.
  t.deepEqual(parse('FROM a\nconstructor x\n__proto__ y\n').nodes.slice(1).map((n) => n.args), [[''], ['']]);
});

// ----- parser directives ------------------------------------------------------------------------

test('directives: syntax, escape and check, names case-insensitive, blanks allowed around = ', (t) => {
  const parsed = parse('#SYNTAX = docker/dockerfile:1.7 \n#\t Escape=`\n# check=skip=JSONArgsRecommended;error=true\n\nFROM a\n');
  t.deepEqual(parsed.directives, { syntax: 'docker/dockerfile:1.7', escape: '`', check: 'skip=JSONArgsRecommended;error=true' });
  t.deepEqual(parsed.warnings, []);
});

test('directives: the default escape is backslash and nothing else is set', (t) => {
  t.deepEqual(parse('FROM a\n').directives, { escape: '\\' });
});

test('directives stop at the first instruction, comment or blank line; later ones are comments, with a warning', (t) => {
  for (const [text, line] of [
    ['FROM a\n# escape=`\nRUN a \\\nb\n', 2],
    ['# a comment\n# escape=`\nFROM a\nRUN a \\\nb\n', 2],
    ['\n# escape=`\nFROM a\nRUN a \\\nb\n', 2],
  ] as const) {
    const parsed = parse(text);
    t.is(parsed.directives.escape, '\\', text);
    t.is(parsed.nodes.at(-1)!.args[0], 'a b', text);
    t.deepEqual(parsed.warnings.map((w) => w.line), [line], text);
  }
});

test('directives: an unknown one is a comment and ends the directives (BuildKit), with a warning', (t) => {
  const parsed = parse('# foo=bar\n# escape=`\nFROM a\n');
  t.is(parsed.directives.escape, '\\');
  t.is(parsed.directives.foo, undefined);
  t.deepEqual(
    parsed.warnings.map((w) => w.line),
    [1, 2],
  );
  t.regex(parsed.warnings[0]!.message, /"foo" is not a parser directive/);
});

test('directives: a line continuation does not continue a directive', (t) => {
  const parsed = parse('# escape=\\\n# syntax=x \\\n y\nFROM a\n');
  t.is(parsed.directives.syntax, 'x \\');
  t.is(parsed.nodes[0]!.keyword, 'y');
});

test('directives: directive lines are not comments of the first instruction, other comments are', (t) => {
  const { nodes } = parse('# syntax=a/b\n# escape=\\\n\n# base image\nFROM a\n');
  t.deepEqual(nodes[0]!.comments, ['base image']);
});

test('directives: after a #! first line, syntax is still found (BuildKit detects it) but escape is not', (t) => {
  const parsed = parse('#!/usr/bin/env buildctl\n# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n');
  t.is(parsed.directives.syntax, 'docker/dockerfile:1');
  t.is(parsed.directives.escape, '\\');
  t.deepEqual(parsed.warnings.map((w) => w.line), [3]);
});

test('directives: indented, escape is read but syntax is not (BuildKit’s two scans differ), with a warning', (t) => {
  const parsed = parse('  # syntax=x/y\n\t# escape=`\nFROM a\n');
  t.is(parsed.directives.escape, '`');
  t.is(parsed.directives.syntax, undefined);
  t.deepEqual(parsed.warnings.map((w) => w.line), [1]);
});

test('escape=` : backtick continues lines and escapes in words; backslash is literal', (t) => {
  const parsed = parse('# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n    && echo done\nWORKDIR c:\\\nENV A=b` c\n');
  t.is(
    dumpDockerfile(parsed),
    ['(from "mcr.microsoft.com/windows")', '(run "dir c:\\\\     && echo done")', '(workdir "c:\\\\")', '(env "A" "b` c" "=")'].join('\n'),
  );
});

// ----- line handling ----------------------------------------------------------------------------

test('CRLF files parse like LF files; heredoc bodies keep their CRLF', (t) => {
  const lf = 'FROM a\nRUN echo a \\\n  b\nCOPY <<EOF /x\nhi\nEOF\n# c\nCMD ["x"]\n';
  const crlf = lf.replace(/\n/g, '\r\n');
  t.is(dump(crlf), dump(lf));
  const nodes = parse(crlf).nodes;
  t.deepEqual(nodes.map((n) => [n.startLine, n.endLine]), parse(lf).nodes.map((n) => [n.startLine, n.endLine]));
  t.is(nodes[2]!.heredocs[0]!.content, 'hi\r\n');
  t.is(nodes[1]!.original, 'RUN echo a   b');
});

test('a byte-order mark is dropped and does not shift columns or hide a directive', (t) => {
  const parsed = parse('\ufeff# escape=`\nFROM a\n');
  t.is(parsed.directives.escape, '`');
  t.is(parsed.nodes[0]!.column, 1);
  t.is(dump('\ufeffFROM a'), '(from "a")');
});

test('a continuation at end of file ends the instruction', (t) => {
  t.is(dump('FROM a\nRUN echo hi \\'), '(from "a")\n(run "echo hi")');
  t.is(dump('FROM a\nRUN echo hi \\\n'), '(from "a")\n(run "echo hi")');
});

test('comments inside a continued instruction are skipped; blank lines too, with a warning', (t) => {
  const parsed = parse('FROM a\nRUN one \\\n  # a comment \\\n\n  two \\\n   \n  three\nRUN four\n');
  t.deepEqual(parsed.nodes.map(dumpNode), ['from "a"', 'run "one   two   three"', 'run "four"']);
  t.deepEqual(parsed.nodes[1]!.comments, []);
  t.deepEqual(parsed.warnings.map((w) => w.line), [4]);
  t.regex(parsed.warnings[0]!.message, /empty continuation line/);
});

test('an escaped escape at the end of a line is literal, not a continuation', (t) => {
  t.is(dump('FROM a\nENV A=b\\\\\nENV C=d\n'), '(from "a")\n(env "A" "b\\\\\\\\" "=")\n(env "C" "d" "=")');
});

test('blanks after the escape character still continue the line', (t) => {
  t.is(dump('FROM a\nRUN a \\ \t\n b\n'), '(from "a")\n(run "a  b")');
});

// ----- positions --------------------------------------------------------------------------------

test('startLine, endLine and column (1-based) of each instruction', (t) => {
  const { nodes } = parse('# c\nFROM a AS b\n\n    RUN x \\\n      y\n\tCOPY <<EOF /f\nbody\nEOF\nUSER me\n');
  t.deepEqual(
    nodes.map((n) => [n.keyword, n.startLine, n.endLine, n.column]),
    [
      ['from', 2, 2, 1],
      ['run', 4, 5, 5],
      ['copy', 6, 8, 2],
      ['user', 9, 9, 1],
    ],
  );
});

test('ONBUILD: the trigger is `next`, with its own column and the same lines', (t) => {
  const { nodes } = parse('FROM a\n  ONBUILD   COPY --from=b x y\nONBUILD\n');
  const onbuild = nodes[1]!;
  t.is(onbuild.keyword, 'onbuild');
  t.deepEqual(onbuild.args, []);
  t.is(onbuild.next?.keyword, 'copy');
  t.deepEqual(onbuild.next?.flags, ['--from=b']);
  t.deepEqual(onbuild.next?.args, ['x', 'y']);
  t.is(onbuild.next?.original, 'COPY --from=b x y');
  t.deepEqual([onbuild.column, onbuild.next?.column, onbuild.next?.startLine], [3, 13, 2]);
  t.is(dumpNode(onbuild), 'onbuild (copy ["--from=b"] "x" "y")');
  t.is(nodes[2]!.next, undefined);
  t.is(dumpNode(nodes[2]!), 'onbuild');
});

test('original is the joined logical line, as BuildKit keeps it', (t) => {
  const { nodes } = parse('FROM a\n  RUN apt-get update \\\n    && apt-get install -y x\n');
  t.is(nodes[1]!.original, 'RUN apt-get update     && apt-get install -y x');
  t.is(nodes[1]!.argsText, 'apt-get update     && apt-get install -y x');
});

test('comments: every comment line since the previous instruction; an empty # starts over', (t) => {
  const { nodes } = parse('FROM a\n# one\n\n  # two\nRUN x\n# old\n#\n# new\nRUN y\nRUN z\n');
  t.deepEqual(nodes.map((n) => n.comments), [[], ['one', 'two'], ['new'], []]);
});

// ----- heredocs ---------------------------------------------------------------------------------

test('heredocs: RUN <<EOF body, endLine at the terminator, args keep the opener', (t) => {
  const { nodes } = parse('FROM a\nRUN <<EOF\nset -e\necho $HOME\nEOF\nRUN next\n');
  t.deepEqual(nodes[1]!.heredocs, [{ name: 'EOF', content: 'set -e\necho $HOME\n', expand: true, chomp: false, fileDescriptor: 0 }]);
  t.deepEqual(nodes[1]!.args, ['<<EOF']);
  t.deepEqual([nodes[1]!.startLine, nodes[1]!.endLine], [2, 5]);
  t.is(nodes[2]!.startLine, 6);
});

test('heredocs: <<-, quoted names (no expansion), file descriptors, several on one line', (t) => {
  const { nodes } = parse("FROM a\nRUN <<-'END' 3<<\"X\" 4<<Y cat\n\tone $A\n\tEND\nx\nX\ny\nY\n");
  t.deepEqual(
    nodes[1]!.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp, h.fileDescriptor]),
    [
      ['END', '\tone $A\n', false, true, 0],
      ['X', 'x\n', false, false, 3],
      ['Y', 'y\n', true, false, 4],
    ],
  );
  t.is(chompHeredocContent(nodes[1]!.heredocs[0]!.content), 'one $A\n');
});

test('heredocs: a blank after << is allowed (BuildKit 1.26)', (t) => {
  const { nodes } = parse('FROM a\nRUN cat <<  EOF > /f\nx\nEOF\n');
  t.is(nodes[1]!.heredocs[0]!.name, 'EOF');
  t.is(nodes[1]!.endLine, 4);
});

test('heredocs: COPY and ADD take them as sources; ONBUILD RUN too (kept on the ONBUILD node)', (t) => {
  const { nodes } = parse('FROM a\nCOPY <<one <<two /dest/\n1\none\n2\ntwo\nADD --chmod=644 <<f /f\nx\nf\nONBUILD RUN <<S\necho\nS\n');
  t.deepEqual(nodes[1]!.args, ['<<one', '<<two', '/dest/']);
  t.deepEqual(nodes[1]!.heredocs.map((h) => [h.name, h.content]), [['one', '1\n'], ['two', '2\n']]);
  t.deepEqual(nodes[2]!.heredocs.map((h) => h.name), ['f']);
  t.deepEqual(nodes[3]!.heredocs.map((h) => [h.name, h.content]), [['S', 'echo\n']]);
  t.deepEqual(nodes[3]!.next?.heredocs, []);
  t.is(nodes[3]!.endLine, 12);
});

test('heredocs: other instructions and exec form take << literally; quoted << is not an opener', (t) => {
  const { nodes } = parse('FROM a\nENV A=<<EOF\nLABEL x=<<EOF\nRUN ["sh", "-c", "cat <<EOF"]\nRUN echo "<<EOF" \'<<EOF\' \\<<EOF\nEOF\n');
  t.deepEqual(nodes.map((n) => [n.keyword, n.heredocs.length]), [
    ['from', 0],
    ['env', 0],
    ['label', 0],
    ['run', 0],
    ['run', 0],
    ['eof', 0],
  ]);
});

test('heredocs: bodies are raw (comments, continuations and blank lines kept); the body comes after the whole logical line', (t) => {
  const { nodes } = parse('FROM a\nRUN python3 <<PY \\\n  --flag\n# not a comment \\\n\nprint(1)\nPY\n');
  t.is(nodes[1]!.original, 'RUN python3 <<PY   --flag');
  t.is(nodes[1]!.heredocs[0]!.content, '# not a comment \\\n\nprint(1)\n');
});

test('chompHeredocContent strips leading tabs only, and only after \\n', (t) => {
  t.is(chompHeredocContent('\t\ta\n \tb\n\tc\r\tD'), 'a\n \tb\nc\r\tD');
});

// ----- words, flags and JSON --------------------------------------------------------------------

test('flags: only leading; -- ends them; quotes and backslashes are removed from flags', (t) => {
  t.is(
    dump('FROM --platform=$BUILDPLATFORM a AS b\nCOPY --chown="a b" --from=b -- --weird /d\nCOPY src --from=b /d\nRUN --mount=type=secret,id=x \\\n  --network=none cmd --not-a-flag\n'),
    [
      '(from ["--platform=$BUILDPLATFORM"] "a" "AS" "b")',
      '(copy ["--chown=a b" "--from=b"] "--weird" "/d")',
      '(copy "src" "--from=b" "/d")',
      '(run ["--mount=type=secret,id=x" "--network=none"] "cmd --not-a-flag")',
    ].join('\n'),
  );
});

test('JSON that is not a string array falls back to shell form unless it is an array of non-strings', (t) => {
  const { nodes } = parse('FROM a\nCMD ["a", "b"] trailing\nENTRYPOINT [\'a\']\nSHELL ["/bin/bash", "-c"]\nVOLUME ["/a", "/b"]\nVOLUME /c /d\n');
  t.deepEqual(nodes.slice(1).map((n) => [n.json, n.args]), [
    [false, ['["a", "b"] trailing']],
    [false, ["['a']"]],
    [true, ['/bin/bash', '-c']],
    [true, ['/a', '/b']],
    [false, ['/c', '/d']],
  ]);
  reject(t, 'FROM a\nRUN [null]\n');
  reject(t, 'FROM a\nCOPY [{"a": 1}, "/x"]\n');
});

test('ENV and LABEL: triples with "=" or "" (legacy form), quotes and escapes verbatim', (t) => {
  t.is(
    dump('FROM a\nENV A="x y" B=z\\ w C=\nENV D e f\nLABEL "k"=\'v\' k2=v2\nARG N=1 M\n'),
    [
      '(from "a")',
      '(env "A" "\\"x y\\"" "=" "B" "z\\\\ w" "=" "C" "" "=")',
      '(env "D" "e f" "")',
      '(label "\\"k\\"" "\'v\'" "=" "k2" "v2" "=")',
      '(arg "N=1" "M")',
    ].join('\n'),
  );
});

test('HEALTHCHECK: type then command; NONE alone', (t) => {
  const { nodes } = parse('FROM a\nHEALTHCHECK --interval=5s CMD ["curl", "-f", "x"]\nHEALTHCHECK NONE\n');
  t.deepEqual([nodes[1]!.flags, nodes[1]!.args, nodes[1]!.json], [['--interval=5s'], ['CMD', 'curl', '-f', 'x'], true]);
  t.deepEqual([nodes[2]!.args, nodes[2]!.json], [['NONE'], false]);
});

test('keywords are case-insensitive and lowercased', (t) => {
  t.is(dump('from a\nRuN echo\n'), '(from "a")\n(run "echo")');
});

test('the dump quotes like Go: control characters, non-printing and printable Unicode', (t) => {
  t.is(dump('FROM a\nCMD ["\\u0000\\u0007\\u007f", "\\u00a0\\u200b", "é😀"]\n'), '(from "a")\n(cmd "\\x00\\a\\x7f" "\\u00a0\\u200b" "é😀")');
});
