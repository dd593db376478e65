import test from 'ava';
import { LadingError } from '../../src/errors.ts';
import { ShellLex, locateShellError, type EnvLookup } from '../../src/frontend/shell.ts';

const lex = new ShellLex();

function expand(word: string, env: Record<string, string> = {}): string {
  return lex.processWord(word, new Map(Object.entries(env))).value;
}

function failure(fn: () => unknown): LadingError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LadingError) return err;
    throw err;
  }
  throw new Error('expected a LadingError');
}

// --- matched / unmatched: which variables a word used --------------------------------------------

const trackingCases: { input: string; env: Record<string, string>; value: string; matched: string[]; unmatched: string[] }[] = [
  { input: 'x', env: { DUMMY: 'd' }, value: 'x', matched: [], unmatched: [] },
  { input: 'x ${UNUSED}', env: { DUMMY: 'd' }, value: 'x ', matched: [], unmatched: ['UNUSED'] },
  { input: 'x ${FOO}', env: { FOO: 'y' }, value: 'x y', matched: ['FOO'], unmatched: [] },
  { input: '${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'xxx  ccc', matched: ['BAR', 'FOO'], unmatched: ['BAZ'] },
  { input: '${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'xxx bbb ccc', matched: ['BAR', 'FOO'], unmatched: ['BAZ'] },
  { input: '${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'aaa bbb ', matched: ['BAR', 'FOO'], unmatched: ['BAZ'] },
  { input: '${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', env: { FOO: 'xxx', BAR: '' }, value: 'aaa  ', matched: ['BAR', 'FOO'], unmatched: ['BAZ'] },
  { input: '${BAR?bbb}', env: { BAR: '' }, value: '', matched: ['BAR'], unmatched: [] },
  // The default word is expanded (and its variables recorded) even when it is not used.
  { input: '${FOO:-$OTHER}', env: { FOO: 'set' }, value: 'set', matched: ['FOO'], unmatched: ['OTHER'] },
  { input: '$A$B${C}', env: { A: '1' }, value: '1', matched: ['A'], unmatched: ['B', 'C'] },
  // Single quotes hide references; double quotes do not.
  { input: `'$A'"$B"`, env: { A: 'a', B: 'b' }, value: '$Ab', matched: ['B'], unmatched: [] },
  { input: '\\$A', env: { A: 'a' }, value: '$A', matched: [], unmatched: [] },
  // Positional and special parameters are looked up (and never set).
  { input: '$1$@', env: {}, value: '', matched: [], unmatched: ['1', '@'] },
  {
    input: 'something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz',
    env: { VERSION: 'v1.2.3', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7' },
    value: 'something-v1.2.3.linux-arm-v7.tar.gz',
    matched: ['TARGETARCH', 'TARGETOS', 'TARGETVARIANT', 'VERSION'],
    unmatched: [],
  },
  {
    input: 'something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz',
    env: { VERSION: 'v1.2.3', TARGETOS: 'linux', TARGETARCH: 'arm64', TARGETVARIANT: '' },
    value: 'something-v1.2.3.linux-arm64.tar.gz',
    matched: ['TARGETARCH', 'TARGETOS', 'TARGETVARIANT', 'VERSION'],
    unmatched: [],
  },
];

for (const c of trackingCases) {
  test(`matched/unmatched: ${c.input} with ${JSON.stringify(c.env)}`, (t) => {
    const r = lex.processWord(c.input, new Map(Object.entries(c.env)));
    t.is(r.value, c.value);
    t.deepEqual([...r.matched].sort(), c.matched);
    t.deepEqual([...r.unmatched].sort(), c.unmatched);
  });
}

test('processWords reports the same variable sets as processWord', (t) => {
  const env = new Map([['A', 'x y']]);
  const r = lex.processWords('$A ${B:-z}', env);
  t.deepEqual(r.words, ['x', 'y', 'z']);
  t.deepEqual([...r.matched], ['A']);
  t.deepEqual([...r.unmatched], ['B']);
});

test('a lookup function is asked once per reference and undefined means unset', (t) => {
  const asked: string[] = [];
  const env: EnvLookup = (name) => {
    asked.push(name);
    return name === 'SET' ? '' : undefined;
  };
  const r = lex.processWord('${SET-a}${UNSET-b}', env);
  t.is(r.value, 'b');
  t.deepEqual(asked, ['SET', 'UNSET']);
  t.deepEqual([...r.matched], ['SET']);
  t.deepEqual([...r.unmatched], ['UNSET']);
});

test('variable names are case-sensitive (Linux semantics)', (t) => {
  const r = lex.processWord('$pwd', new Map([['PWD', '/home']]));
  t.is(r.value, '');
  t.deepEqual([...r.unmatched], ['pwd']);
});

// --- the backtick escape token (# escape=`) ------------------------------------------------------

test('with the backtick escape token, ` escapes and \\ is an ordinary character', (t) => {
  const bt = new ShellLex('`');
  const env = new Map([['PWD', '/home']]);
  t.is(bt.processWord('c:\\windows\\$PWD', env).value, 'c:\\windows\\/home');
  t.is(bt.processWord('he`$PWD', env).value, 'he$PWD');
  t.is(bt.processWord('a``b', env).value, 'a`b');
  t.is(bt.processWord('trailing`', env).value, 'trailing');
  t.is(bt.processWord('`a', env).value, 'a');
  t.deepEqual(bt.processWords('one` two three', env).words, ['one two', 'three']);
});

test('inside double quotes the backtick escapes only ", $ and itself', (t) => {
  const bt = new ShellLex('`');
  const env = new Map([['X', 'v']]);
  t.is(bt.processWord('"a`"b"', env).value, 'a"b');
  t.is(bt.processWord('"`$X"', env).value, '$X');
  t.is(bt.processWord('"``"', env).value, '`');
  t.is(bt.processWord('"`n"', env).value, '`n');
  t.is(bt.processWord('"c:\\dir\\$X"', env).value, 'c:\\dir\\v');
});

test('the backtick token keeps escapes raw inside trim patterns like BuildKit', (t) => {
  const bt = new ShellLex('`');
  // The escape stays in the pattern, where only \ has a meaning: `} is a backtick and a brace.
  t.is(bt.processWord('${X#*`}}', new Map([['X', 'ab`}cd']])).value, 'cd');
  // An escaped } does not close the reference.
  t.throws(() => bt.processWord('${X#*`}', new Map()), { instanceOf: LadingError });
});

// --- BuildKit's newer modifiers: trim and replace ------------------------------------------------

const patternCases: [string, Record<string, string>, string][] = [
  ['${FOO#()[]{\\}^$.\\*\\?|\\\\}', { FOO: '()[]{}^$.*?|\\x' }, 'x'],
  ['${FOO%%\\**}', { FOO: 'xx**' }, 'xx'],
  ['${FOO#*x*y}', { FOO: 'xxyy' }, 'y'],
  ['${FOO#*}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO##*}', { FOO: 'xxyy' }, ''],
  ['${FOO#$BAR}', { FOO: 'xxyy', BAR: 'x' }, 'xyy'],
  ['${FOO#}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO##*x}', { FOO: 'xxyy' }, 'yy'],
  ['${FOO#?\\?}', { FOO: '???y' }, '?y'],
  ['${ABC:-.}${FOO%x}${ABC:-.}', { FOO: 'xxyy' }, '.xxyy.'],
  ['${FOO%%\\**\\*}', { FOO: 'a***yy*' }, 'a'],
  ['${FOO%y*}', { FOO: 'xxyy' }, 'xxy'],
  ['${FOO%%y*}', { FOO: 'xxyy' }, 'xx'],
  ['${FOO%.*}', { FOO: 'archive.tar.gz' }, 'archive.tar'],
  ['${FOO%%.*}', { FOO: 'archive.tar.gz' }, 'archive'],
  ['${FOO##*/}', { FOO: '/usr/local/bin/tool' }, 'tool'],
  ['${FOO#UNSET}', {}, ''],
  ['${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, '/foo.*/*.txt - /foo..*.txt'],
  ['${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, '/tmp/bar.txt - /bar.txt'],
  ['${FOO/$N/$R} - ${FOO//$N/$R}', { FOO: '/a/foo/b/c.txt', N: '/?/', R: '/' }, '/foo/b/c.txt - /foo/c.txt'],
  ['${FOO/$N/$R}', { FOO: 'http://google.de', N: 'http://', R: 'https://' }, 'https://google.de'],
  ['${FOO//\\//\\/}', { FOO: '/tmp/foo.txt' }, '\\/tmp\\/foo.txt'],
  ['${FOO/$BAR/ww}', { FOO: 'xxyy', BAR: '' }, 'wwxxyy'],
  ['${FOO///}', { FOO: 'xxyy' }, 'xxyy'],
  ['${FOO///}', {}, ''],
  // Replace-all follows Go: no replacement for an empty match right after a match.
  ['${FOO//*/-}', { FOO: 'abc' }, '-'],
  ['${FOO//$E/-}', { FOO: 'ab', E: '' }, '-a-b-'],
  ['${FOO//a*/-}', { FOO: 'baaac' }, 'b-'],
  // Replace-all treats the replacement as a Go template: $0 is the match, $$ a dollar.
  ["${FOO//o/'[$0]'}", { FOO: 'foo' }, 'f[o][o]'],
  ["${FOO//o/'$$'}", { FOO: 'foo' }, 'f$$'],
  // ...while replace-first inserts it literally.
  ["${FOO/o/'[$0]'}", { FOO: 'foo' }, 'f[$0]o'],
  // Patterns match characters, not UTF-16 units.
  ['${FOO#?}', { FOO: '👽x' }, 'x'],
  ['${FOO%?}', { FOO: 'x👽' }, 'x'],
];

for (const [input, env, expected] of patternCases) {
  test(`pattern modifier: ${input} with ${JSON.stringify(env)}`, (t) => {
    t.is(expand(input, env), expected);
  });
}

// --- BuildKit's optional modes -------------------------------------------------------------------

test('skipUnsetEnv leaves references to unset variables as written', (t) => {
  const partial = new ShellLex('\\', { skipUnsetEnv: true });
  const env = new Map([['SET', 'v']]);
  t.is(partial.processWord('$SET $UNSET ${UNSET} ${UNSET:-d} ${UNSET/a/b}', env).value, 'v $UNSET ${UNSET} ${UNSET:-d} ${UNSET/a/b}');
});

test('rawQuotes keeps quotes, rawEscapes keeps escapes, skipProcessQuotes ignores quotes', (t) => {
  const env = new Map([['X', 'v']]);
  t.is(new ShellLex('\\', { rawQuotes: true }).processWord(`'a' "$X"`, env).value, `'a' "v"`);
  t.is(new ShellLex('\\', { rawEscapes: true }).processWord('a\\$X\\b', env).value, 'a\\$X\\b');
  t.is(new ShellLex('\\', { skipProcessQuotes: true }).processWord(`'$X' "a`, env).value, `'v' "a`);
});

test('words split only at unquoted, unescaped white space, including text from variables', (t) => {
  const env = new Map([['S', ' a  b ']]);
  t.deepEqual(lex.processWords('x${S}y', env).words, ['x', 'a', 'b', 'y']);
  t.deepEqual(lex.processWords('x"${S}"y', env).words, ['x a  b y']);
  // A default containing spaces splits too, and text before the reference is kept.
  t.deepEqual(lex.processWords('a${X:-b c}d', env).words, ['ab', 'cd']);
  t.deepEqual(lex.processWords('""', env).words, []);
  t.deepEqual(lex.processWords('a\tb\nc', env).words, ['a', 'b', 'c']);
});

test('a byte-order mark at the start of a word is dropped', (t) => {
  t.is(expand('\ufeffabc'), 'abc');
  t.is(expand('a\ufeffbc'), 'a\ufeffbc');
});

// --- errors --------------------------------------------------------------------------------------

const errorCases: { input: string; env?: Record<string, string>; message: RegExp; column: number; hint: RegExp }[] = [
  { input: 'he${', message: /missing '}'/, column: 3, hint: /'}'/ },
  { input: 'ab${PWD', message: /missing '}'/, column: 3, hint: /'}'/ },
  { input: '${X:-abc', message: /missing '}'/, column: 1, hint: /'}'/ },
  { input: 'x${}', message: /bad substitution/, column: 2, hint: /variable name/ },
  { input: '${.}', message: /bad substitution/, column: 1, hint: /variable name/ },
  { input: '${X:=1}', message: /unsupported modifier \(:=\)/, column: 1, hint: /NAME:-default/ },
  { input: '${X:#a}', message: /unsupported modifier \(:#\)/, column: 1, hint: /supported forms/ },
  { input: "a'bc", message: /single-quote/, column: 2, hint: /close the quote/ },
  { input: 'ab"c', message: /double-quote/, column: 3, hint: /close the quote/ },
  { input: '${X?}', message: /X: is not allowed to be unset/, column: 1, hint: /--build-arg X=/ },
  { input: '${X:?}', env: { X: '' }, message: /X: is not allowed to be empty/, column: 1, hint: /--build-arg X=/ },
  { input: '${VAR:?message here$ARG}', env: { ARG: 'x' }, message: /VAR: message herex/, column: 1, hint: /ARG or ENV/ },
  { input: '${X#\\x}', env: { X: 'a' }, message: /invalid escape/, column: 1, hint: /escapes/ },
  { input: '${FOO//ww}', env: { FOO: 'a' }, message: /missing '\/'/, column: 1, hint: /'}'/ },
  { input: '안녕${', message: /missing '}'/, column: 3, hint: /'}'/ },
];

for (const c of errorCases) {
  test(`error: ${c.input}`, (t) => {
    const err = failure(() => lex.processWord(c.input, new Map(Object.entries(c.env ?? {}))));
    t.is(err.code, 'DOCKERFILE_INVALID');
    t.true(err.message.startsWith(`failed to process ${JSON.stringify(c.input)}: `), err.message);
    t.regex(err.message, c.message);
    t.regex(err.hint ?? '', c.hint);
    t.is(err.details.column, c.column);
  });
}

test('the hint names the escape token in use', (t) => {
  const err = failure(() => new ShellLex('`').processWord('"abc', new Map()));
  t.regex(err.hint ?? '', /`"/);
});

test('locateShellError points the error at the character in the Dockerfile', (t) => {
  const err = failure(() => lex.processWord('/app/${DIR', new Map()));
  const located = locateShellError(err, { file: 'Dockerfile', line: 7, column: 9, text: 'WORKDIR /app/${DIR' });
  t.true(located instanceof LadingError);
  const l = located as LadingError;
  t.deepEqual(l.location, { file: 'Dockerfile', line: 7, column: 14, text: 'WORKDIR /app/${DIR' });
  t.is(l.headline(), `Dockerfile:7:14: ${err.message}`);
  t.is(l.hint, err.hint);
  // Without a start column only file and line are known.
  const noColumn = locateShellError(err, { file: 'Dockerfile', line: 7 }) as LadingError;
  t.is(noColumn.location?.column, undefined);
  // Anything else passes through untouched.
  const other = new Error('x');
  t.is(locateShellError(other, { file: 'Dockerfile', line: 1 }), other);
});
