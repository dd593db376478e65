/**
 * Dockerfile text → instruction nodes, the job of BuildKit's `frontend/dockerfile/parser` package
 * (dockerfile/1.26). Quotes and escapes stay verbatim and variables are not expanded: that is
 * `shell.ts`'s job, and turning nodes into typed commands is `instructions.ts`'s.
 *
 * The behaviour is learnt from BuildKit's parser test data (see test/frontend/parser.test.ts), and
 * `dumpDockerfile` reproduces BuildKit's `Node.Dump` so the two can be compared byte for byte.
 * `docs/decisions.md` says why this is our own code rather than `dockerfile-ast`.
 *
 * The shape of a parse, as BuildKit does it:
 * 1. Lines are read one at a time; the first may start with a byte-order mark.
 * 2. Parser directives (`# syntax=`, `# escape=`, `# check=`) are read until the first line that is
 *    not one; comments and blank lines between instructions are skipped.
 * 3. An instruction continues while its line ends in the escape character; comment lines and blank
 *    lines inside a continued instruction are skipped (blank ones with a warning).
 * 4. The joined line is split into keyword, leading `--flags` and the rest, and the rest is split by
 *    a per-keyword rule (JSON array or shell form, key=value pairs, plain words, ...).
 * 5. RUN, COPY and ADD (also as an ONBUILD trigger) in shell form may open heredocs; their bodies are
 *    the lines that follow, up to each terminator, in order.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';

export type { Heredoc } from '../graph/types.ts';
import type { Heredoc } from '../graph/types.ts';

export interface InstructionNode {
  /** Lowercased: 'from', 'run', 'copy', 'onbuild', ... An unknown keyword is kept, not rejected. */
  keyword: string;
  /** The instruction's logical line: continuations joined, comments dropped (BuildKit's Node.Original). */
  original: string;
  /** Leading `--flags`, quotes removed as BuildKit does (`--from=build`); `--` ends them. */
  flags: string[];
  /**
   * The words of BuildKit's Next chain: shell form is one string; JSON form the array items; ENV and
   * LABEL are triples key, value, separator ('=' or '' for the legacy `ENV k v`); ARG, FROM, EXPOSE
   * and the shell forms of COPY/ADD/VOLUME are words; HEALTHCHECK is its type then its command. An
   * unknown keyword has one empty word, as in BuildKit.
   */
  args: string[];
  /** The text after the keyword and flags, trimmed: what the per-keyword rule split into `args`. */
  argsText: string;
  /** Exec (JSON array) form. */
  json: boolean;
  /** For ONBUILD the heredocs of its trigger sit here, on the ONBUILD node, as in BuildKit. */
  heredocs: Heredoc[];
  /** ONBUILD's trigger instruction. It shares the ONBUILD node's lines. */
  next?: InstructionNode;
  /** 1-based, from the keyword's line to the last line (continuation or heredoc terminator). */
  startLine: number;
  endLine: number;
  /** 1-based column of the keyword on `startLine`. */
  column: number;
  /** Comment lines since the previous instruction, `#` removed (BuildKit's PrevComment). */
  comments: string[];
}

export interface ParserDirectives {
  syntax?: string;
  escape: '\\' | '`';
  check?: string;
  [k: string]: string | undefined;
}

export interface ParseWarning {
  message: string;
  line: number;
}

export interface ParsedDockerfile {
  file: string;
  directives: ParserDirectives;
  nodes: InstructionNode[];
  warnings: ParseWarning[];
}

type EscapeChar = '\\' | '`';

/** Instructions whose shell form may open heredocs; ONBUILD is looked through to its trigger. */
const HEREDOC_KEYWORDS = new Set(['run', 'copy', 'add']);

/**
 * Parse a Dockerfile. Throws one LadingError (code DOCKERFILE_PARSE) naming the first problem, with
 * every further problem found in the same pass in `related`.
 */
export function parseDockerfile(text: string, file: string): ParsedDockerfile {
  const lines = splitLines(text);
  const problems = new Problems(file, lines);
  const directives = new DirectiveReader(problems);
  const warnings: ParseWarning[] = [];
  const nodes: InstructionNode[] = [];
  let comments: string[] = [];

  // `consumed` counts the lines read so far, so it is also the 1-based number of the last one.
  let consumed = 0;
  while (consumed < lines.length) {
    const raw = lines[consumed]!;
    const lineNo = ++consumed;
    comments = withComment(comments, raw);
    const content = goTrimStart(trimNewline(raw));
    if (directives.read(content, lineNo)) comments.pop();
    const [first, ended] = trimContinuation(isComment(content) ? '' : content, directives.escape);
    if (ended && first === '') continue;

    const logical = joinContinuedLines(lines, lineNo, first, ended, directives.escape);
    consumed = logical.endLine;
    if (logical.firstEmptyLine) {
      warnings.push({
        message: `empty continuation line inside the instruction starting on line ${lineNo}: BuildKit warns that empty continuation lines will become errors in a future release`,
        line: logical.firstEmptyLine,
      });
    }

    const at: Placement = {
      startLine: lineNo,
      endLine: consumed,
      column: raw.length - goTrimStart(raw).length + 1,
      comments,
      firstLineWidth: first.length,
    };
    comments = [];
    let node: InstructionNode;
    try {
      node = buildNode(logical.line, directives.escape, at);
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      problems.add(err.message, err.hint, at.startLine, at.column);
      continue;
    }
    if (canContainHeredoc(node) && logical.line.includes('<<')) {
      consumed = readHeredocBodies(lines, consumed, node, logical.line, problems);
    }
    node.endLine = consumed;
    if (node.next) node.next.endLine = consumed;
    nodes.push(node);
  }

  if (nodes.length === 0 && problems.empty()) {
    problems.add(
      'file with no instructions',
      'a Dockerfile needs at least one instruction; it usually starts with FROM (for example FROM alpine:3.20)',
      Math.max(1, lines.length),
      1,
    );
  }
  problems.throwIfAny();

  const detected = detectSyntaxAndCheck(lines);
  const parsedDirectives: ParserDirectives = { escape: directives.escape, ...detected.values };
  warnings.unshift(...directiveWarnings(directives, detected));
  return { file, directives: parsedDirectives, nodes, warnings };
}

/** BuildKit's Node.Dump for one instruction: `keyword ["--flag"] "arg" ...`, without the outer parentheses. */
export function dumpNode(node: InstructionNode): string {
  let out = node.keyword;
  if (node.flags.length > 0) out += ` [${node.flags.map(goQuote).join(' ')}]`;
  for (const arg of node.args) out += ` ${goQuote(arg)}`;
  if (node.next) out += ` (${dumpNode(node.next)})`;
  return goTrimSpace(out);
}

/** Every node as BuildKit's parser tests print them (the `result` files): one `(...)` per line. */
export function dumpDockerfile(parsed: ParsedDockerfile): string {
  return parsed.nodes.map((node) => `(${dumpNode(node)})`).join('\n');
}

/** `<<-` semantics: strip the leading tabs of every line of a heredoc body. */
export function chompHeredocContent(content: string): string {
  // Only `\n` starts a line, as in BuildKit (a JS `m` flag would also split on a lone `\r`).
  return content.replace(/(^|\n)\t+/g, '$1');
}

/**
 * The heredocs a logical instruction line opens, in order, with empty bodies (BuildKit's
 * heredocsFromLine). Words are read as a shell would split them, so a quoted `"<<EOF"` opens none.
 */
export function heredocsInLine(line: string): Heredoc[] {
  return asLadingError(() => openersInLine(line));
}

/**
 * One shell word as a heredoc opener (BuildKit's ParseHeredoc): `[n]<<[-][spaces]NAME`. Returns
 * null when the word opens none (`<<`, `<EOF`, `<<<EOF`, `<<EOF sh`); throws a LadingError when the
 * name's quotes do not close.
 */
export function parseHeredocWord(word: string): Heredoc | null {
  return asLadingError(() => heredocFromWord(word));
}

// ---------------------------------------------------------------------------------------------
// Lines and whitespace

/** Physical lines, each with its `\n` (heredoc bodies keep them); a leading BOM is dropped. */
function splitLines(text: string): string[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines: string[] = [];
  let start = 0;
  while (start < body.length) {
    const end = body.indexOf('\n', start);
    if (end < 0) {
      lines.push(body.slice(start));
      break;
    }
    lines.push(body.slice(start, end + 1));
    start = end + 1;
  }
  return lines;
}

/** Go's unicode.IsSpace set, which BuildKit trims with (JS's `\s` differs: it has U+FEFF, lacks U+0085). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING_SPACE = new RegExp(`^[${GO_SPACE}]+`);
const IS_SPACE = new RegExp(`^[${GO_SPACE}]$`);
/** The separator BuildKit splits keyword and plain word lists on: ASCII blanks, not newlines. */
const BLANKS = /[\t\v\f\r ]+/;

function goTrimStart(s: string): string {
  return s.replace(LEADING_SPACE, '');
}

function goTrimSpace(s: string): string {
  // A loop rather than /\s+$/, which is quadratic on a long run of blanks followed by text.
  let end = s.length;
  while (end > 0 && isSpace(s[end - 1]!)) end--;
  return goTrimStart(s.slice(0, end));
}

function isSpace(ch: string): boolean {
  return IS_SPACE.test(ch);
}

function trimNewline(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === '\n' || s[end - 1] === '\r')) end--;
  return s.slice(0, end);
}

function isComment(line: string): boolean {
  return goTrimStart(line).startsWith('#');
}

/**
 * Removes a trailing escape character (and blanks after it) and says whether the instruction ended.
 * An escape preceded by another escape is literal, except on a line of its own; like BuildKit, an
 * escaped escape before a continuation (`foo \\\`) is not recognised.
 */
const CONTINUATION: Record<EscapeChar, RegExp> = {
  '\\': /([^\\])\\[ \t]*$|^\\[ \t]*$/,
  '`': /([^`])`[ \t]*$|^`[ \t]*$/,
};

function trimContinuation(line: string, escape: EscapeChar): [string, boolean] {
  const pattern = CONTINUATION[escape];
  if (!pattern.test(line)) return [line, true];
  return [line.replace(pattern, '$1'), false];
}

/**
 * BuildKit's PrevComment: every comment line since the previous instruction, `#` and blanks
 * removed; an empty `#` line separates a description from the instruction below it.
 */
function withComment(comments: string[], raw: string): string[] {
  // Appends in place: the list is handed to a node and replaced by a new one after each instruction.
  if (!isComment(raw)) return comments;
  const comment = goTrimSpace(goTrimStart(raw).slice(1));
  if (comment === '') return [];
  comments.push(comment);
  return comments;
}

/**
 * The logical line of an instruction whose first line is `first`: while a line ends in the escape
 * character, the next is appended without it. Comment lines in between are skipped, and so are
 * blank ones (BuildKit warns about those).
 */
function joinContinuedLines(
  lines: string[],
  startLine: number,
  first: string,
  ended: boolean,
  escape: EscapeChar,
): { line: string; endLine: number; firstEmptyLine: number } {
  let line = first;
  let endLine = startLine;
  let firstEmptyLine = 0;
  while (!ended && endLine < lines.length) {
    const raw = lines[endLine]!;
    endLine++;
    if (isComment(raw)) continue;
    const piece = trimNewline(raw);
    if (goTrimStart(piece) === '') {
      firstEmptyLine ||= endLine;
      continue;
    }
    let more: string;
    [more, ended] = trimContinuation(piece, escape);
    line += more;
  }
  return { line, endLine, firstEmptyLine };
}

// ---------------------------------------------------------------------------------------------
// Parser directives

const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

/**
 * BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go's `\s` is ASCII), done in two steps
 * because the lazy value followed by `\s*$` is quadratic on long runs of blanks. `name` is
 * lowercased. A value of blanks only is its last blank, as the Go pattern gives.
 */
function matchDirective(line: string): { name: string; written: string; value: string } | null {
  const match = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=([^\n]*)$/.exec(line);
  if (!match) return null;
  const rest = match[2]!;
  if (rest === '') return null;
  const value = rest.replace(/^[\t\n\f\r ]+/, '');
  let end = value.length;
  while (end > 0 && '\t\n\f\r '.includes(value[end - 1]!)) end--;
  return { name: match[1]!.toLowerCase(), written: match[1]!, value: end > 0 ? value.slice(0, end) : rest.slice(-1) };
}

/**
 * Reads directives the way BuildKit's parser does while it parses: only at the top, stopping at the
 * first line that is not a known directive (an instruction, a comment, a blank line, or an unknown
 * `# name=value`, which then counts as a comment). Each may appear once. Only `escape` changes
 * parsing; `syntax` and `check` are taken from `detectSyntaxAndCheck`.
 */
class DirectiveReader {
  escape: EscapeChar = '\\';
  /** Where each directive was read, and the lines that looked like one but came too late. */
  readonly readAt = new Map<string, number>();
  readonly lateAt: { name: string; line: number }[] = [];
  unknownAt?: { name: string; line: number };
  private done = false;

  constructor(private readonly problems: Problems) {}

  /** Returns true when the line is a directive (BuildKit then drops it from the comments). */
  read(content: string, lineNo: number): boolean {
    // Only a comment can be a directive; testing that first keeps instruction lines cheap.
    const match = content.startsWith('#') ? matchDirective(content) : null;
    if (this.done) {
      if (match && KNOWN_DIRECTIVES.has(match.name)) this.lateAt.push({ name: match.name, line: lineNo });
      return false;
    }
    if (!match) {
      this.done = true;
      return false;
    }
    const { name, value } = match;
    if (!KNOWN_DIRECTIVES.has(name)) {
      this.done = true;
      this.unknownAt = { name: match.written, line: lineNo };
      return false;
    }
    const column = content.indexOf('#') + 1;
    if (this.readAt.has(name)) {
      this.problems.add(`only one ${name} parser directive can be used`, `remove all but one "# ${name}=" line`, lineNo, column);
      return false;
    }
    this.readAt.set(name, lineNo);
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        this.problems.add(`invalid escape token '${value}' does not match \` or \\`, 'write "# escape=\\" (the default) or "# escape=`"', lineNo, column);
        return false;
      }
      this.escape = value;
    }
    return true;
  }
}

/**
 * `syntax` and `check` the way BuildKit finds them (DetectSyntax / ParseDirective): a separate scan
 * that skips a `#!` first line and, unlike the parser, does not allow indentation before `#`.
 */
function detectSyntaxAndCheck(lines: string[]): { values: { syntax?: string; check?: string }; lines: Map<string, number> } {
  const values: { syntax?: string; check?: string } = {};
  const at = new Map<string, number>();
  const start = lines[0]?.startsWith('#!') ? 1 : 0;
  for (let i = start; i < lines.length; i++) {
    const match = matchDirective(trimNewline(lines[i]!));
    if (!match || !KNOWN_DIRECTIVES.has(match.name) || at.has(match.name)) break;
    at.set(match.name, i + 1);
    if (match.name === 'syntax' || match.name === 'check') values[match.name] = match.value;
  }
  return { values, lines: at };
}

/** Directive lines that BuildKit reads as comments, or that its two scans disagree on. */
function directiveWarnings(reader: DirectiveReader, detected: ReturnType<typeof detectSyntaxAndCheck>): ParseWarning[] {
  const warnings: ParseWarning[] = [];
  if (reader.unknownAt) {
    warnings.push({
      message: `"${reader.unknownAt.name}" is not a parser directive (known: syntax, escape, check): the line is a comment and no directives are read after it`,
      line: reader.unknownAt.line,
    });
  }
  for (const { name, line } of reader.lateAt) {
    // After a `#!` first line the parser reads no directives, but syntax detection skips that line.
    if (name !== 'escape' && detected.lines.get(name) === line) continue;
    warnings.push({
      message: `"# ${name}=" is read as a comment: parser directives must come before any instruction, comment or blank line`,
      line,
    });
  }
  for (const name of ['syntax', 'check']) {
    const line = reader.readAt.get(name);
    if (line !== undefined && detected.lines.get(name) !== line) {
      warnings.push({ message: `"# ${name}=" is ignored: BuildKit looks for it only on unindented lines at the top of the file`, line });
    }
  }
  return warnings;
}

// ---------------------------------------------------------------------------------------------
// Instructions

/** A problem found while reading one instruction; the parse loop adds where it is. */
class Problem extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** For the exported helpers, which have no location to give: a Problem becomes a LadingError. */
function asLadingError<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (!(err instanceof Problem)) throw err;
    throw new LadingError(ERROR_CODES.DOCKERFILE_PARSE, err.message, { hint: err.hint });
  }
}

interface Placement {
  startLine: number;
  endLine: number;
  column: number;
  comments: string[];
  /** How much of the logical line sits on `startLine`, to place an ONBUILD trigger. */
  firstLineWidth: number;
}

interface SplitArgs {
  args: string[];
  json: boolean;
}

/** How each keyword's arguments become words (BuildKit's dispatch table); ONBUILD is in buildNode. */
const ARGUMENT_RULES = new Map<string, (text: string, escape: EscapeChar) => SplitArgs>([
  ['add', jsonOrWords],
  ['arg', (text, escape) => ({ args: parseWords(text, escape), json: false })],
  ['cmd', jsonOrShell],
  ['copy', jsonOrWords],
  ['entrypoint', jsonOrShell],
  ['env', (text, escape) => keyValuePairs(text, escape, 'ENV')],
  ['expose', blankSeparated],
  ['from', blankSeparated],
  ['healthcheck', healthcheck],
  ['label', (text, escape) => keyValuePairs(text, escape, 'LABEL')],
  ['maintainer', wholeText],
  ['run', jsonOrShell],
  ['shell', jsonOrShell],
  ['stopsignal', wholeText],
  ['user', wholeText],
  ['volume', jsonOrWords],
  ['workdir', wholeText],
]);

function buildNode(line: string, escape: EscapeChar, at: Placement): InstructionNode {
  const { keyword, flags, argsText, argsOffset } = splitCommand(line);
  const node: InstructionNode = {
    keyword,
    original: line,
    flags,
    args: [],
    argsText,
    json: false,
    heredocs: [],
    startLine: at.startLine,
    endLine: at.endLine,
    column: at.column,
    comments: at.comments,
  };
  if (keyword === 'onbuild') {
    if (argsText !== '') {
      const onFirstLine = argsOffset < at.firstLineWidth;
      node.next = buildNode(argsText, escape, {
        ...at,
        column: onFirstLine ? at.column + argsOffset : at.column,
        comments: [],
        firstLineWidth: onFirstLine ? at.firstLineWidth - argsOffset : 0,
      });
    }
    return node;
  }
  const rule = ARGUMENT_RULES.get(keyword);
  // An unknown keyword is instructions.ts's to reject (with suggestions); BuildKit keeps one empty word.
  const split = rule ? rule(argsText, escape) : { args: [''], json: false };
  node.args = split.args;
  node.json = split.json;
  return node;
}

/** Keyword (lowercased), leading flags, and the trimmed rest with its offset in `line`. */
function splitCommand(line: string): { keyword: string; flags: string[]; argsText: string; argsOffset: number } {
  const lead = line.length - goTrimStart(line).length;
  const trimmed = goTrimSpace(line);
  const gap = BLANKS.exec(trimmed);
  if (!gap) return { keyword: trimmed.toLowerCase(), flags: [], argsText: '', argsOffset: line.length };
  const keyword = trimmed.slice(0, gap.index).toLowerCase();
  const afterKeyword = trimmed.slice(gap.index + gap[0].length);
  const { flags, restIndex } = extractFlags(afterKeyword);
  const rest = afterKeyword.slice(restIndex);
  const argsText = goTrimSpace(rest);
  const argsOffset = lead + gap.index + gap[0].length + restIndex + (rest.length - goTrimStart(rest).length);
  return { keyword, flags, argsText, argsOffset };
}

/**
 * Leading words that start with `--` are flags, up to the first other word or a lone `--`. A flag
 * loses its quotes and a backslash escapes the next character (always backslash, whatever the
 * escape directive says). BuildKit reads flags byte by byte and so garbles non-ASCII in them; we
 * read characters.
 */
function extractFlags(text: string): { flags: string[]; restIndex: number } {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < text.length && isSpace(text[pos]!)) pos++;
    if (!text.startsWith('--', pos)) return { flags, restIndex: pos };
    let word = '';
    let quote: string | null = null;
    for (; pos < text.length; pos++) {
      const ch = text[pos]!;
      if (quote === null && isSpace(ch)) break;
      if (ch === quote) {
        quote = null;
      } else if (quote === null && (ch === '"' || ch === "'")) {
        quote = ch;
      } else if (ch === '\\') {
        if (pos + 1 === text.length) quote = null;
        else word += text[++pos];
      } else {
        word += ch;
      }
    }
    if (word === '--') return { flags, restIndex: pos };
    flags.push(word);
  }
}

/** RUN, CMD, ENTRYPOINT, SHELL: a JSON array of strings, or else the whole text as one shell string. */
function jsonOrShell(text: string): SplitArgs {
  if (text === '') return { args: [], json: false };
  const items = jsonArray(text);
  return items ? { args: items, json: true } : { args: [text], json: false };
}

/** COPY, ADD, VOLUME: a JSON array of strings, or else blank-separated words. */
function jsonOrWords(text: string): SplitArgs {
  const items = jsonArray(text);
  return items ? { args: items, json: true } : blankSeparated(text);
}

/**
 * The strings of a JSON array, or null when the text is not one (BuildKit then falls back to
 * shell form, even for text that plainly meant JSON, such as `["a", "b"` or `['a']`). An array
 * holding anything but strings is an error, not a fallback.
 */
function jsonArray(text: string): string[] | null {
  const candidate = goTrimStart(text);
  if (!candidate.startsWith('[')) return null;
  let value: unknown;
  try {
    value = JSON.parse(candidate);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  return value.map((item: unknown) => {
    if (typeof item !== 'string') {
      throw new Problem(
        'when using JSON array syntax, arrays must be comprised of strings only',
        'the exec form takes a flat array of strings, e.g. CMD ["echo", "hello"]; write anything else in shell form',
      );
    }
    // Go decodes a lone surrogate escape (\ud800) to U+FFFD; JSON.parse keeps it.
    return item.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  });
}

function blankSeparated(text: string): SplitArgs {
  return { args: text === '' ? [] : text.split(BLANKS), json: false };
}

function wholeText(text: string): SplitArgs {
  return { args: text === '' ? [] : [text], json: false };
}

/** HEALTHCHECK: its type (CMD, NONE, ...) then the command as RUN would take it. */
function healthcheck(text: string): SplitArgs {
  let end = 0;
  while (end < text.length && !isSpace(text[end]!)) end++;
  if (end === 0) return { args: [], json: false };
  let start = end;
  while (start < text.length && isSpace(text[start]!)) start++;
  const command = jsonOrShell(text.slice(start));
  return { args: [text.slice(0, end), ...command.args], json: command.json };
}

/**
 * ENV and LABEL: `KEY name value` (legacy: everything after the first blank is the value) when the
 * first word has no `=`, else `name=value` words. Each pair becomes key, value, separator.
 */
function keyValuePairs(text: string, escape: EscapeChar, keyword: 'ENV' | 'LABEL'): SplitArgs {
  const words = parseWords(text, escape);
  if (words.length === 0) return { args: [], json: false };
  if (!words[0]!.includes('=')) {
    const gap = BLANKS.exec(text);
    if (!gap) {
      throw new Problem(
        `${keyword} must have two arguments`,
        `write ${keyword} ${keyword === 'ENV' ? 'NAME=value' : 'key=value'} (to set an empty value, ${keyword} ${words[0]}="")`,
      );
    }
    return { args: [text.slice(0, gap.index), text.slice(gap.index + gap[0].length), ''], json: false };
  }
  const args: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new Problem(
        `Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`,
        `every word after ${keyword} must be name=value; quote or escape values that contain spaces (name="a b")`,
      );
    }
    args.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return { args, json: false };
}

/**
 * Splits on blanks outside quotes, keeping quotes and escapes in the words (they are removed when
 * the words are expanded). Inside single quotes the escape character is literal.
 */
function parseWords(text: string, escape: EscapeChar): string[] {
  const chars = Array.from(text);
  const words: string[] = [];
  let word = '';
  let quote: string | null = null;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const last = i + 1 === chars.length;
    if (quote === null) {
      if (isSpace(ch)) {
        if (word !== '') words.push(word);
        word = '';
        continue;
      }
      if (ch === '"' || ch === "'") quote = ch;
      else if (ch === escape) {
        // An escape at the very end is dropped; otherwise it and the next character (even a quote) are kept.
        if (last) continue;
        word += ch;
        i++;
      }
      word += chars[i]!;
      continue;
    }
    if (ch === quote) quote = null;
    else if (ch === escape && quote !== "'") {
      if (last) {
        quote = null;
        continue;
      }
      word += ch;
      i++;
    }
    word += chars[i]!;
  }
  if (word !== '') words.push(word);
  return words;
}

// ---------------------------------------------------------------------------------------------
// Heredocs

function openersInLine(line: string): Heredoc[] {
  let words: LexedWord[];
  try {
    words = lexShellWords(line, true);
  } catch (err) {
    // BuildKit ignores a line it cannot split (an unclosed quote): such a line opens no heredoc.
    if (err instanceof Problem) return [];
    throw err;
  }
  const found: Heredoc[] = [];
  for (const word of words) {
    const heredoc = heredocFromWord(word.text);
    if (heredoc) found.push(heredoc);
  }
  return found;
}

function heredocFromWord(word: string): Heredoc | null {
  const match = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/.exec(word);
  const rest = match?.[3] ?? '';
  if (!match || rest === '') return null;
  const names = lexShellWords(rest, false);
  if (names.length !== 1) return null;
  const digits = match[1] ?? '';
  return {
    name: names[0]!.text,
    content: '',
    expand: !names[0]!.quoted,
    chomp: match[2] === '-',
    fileDescriptor: digits === '' ? 0 : Number(digits),
  };
}

function canContainHeredoc(node: InstructionNode): boolean {
  const target = node.keyword === 'onbuild' && node.next ? node.next : node;
  return HEREDOC_KEYWORDS.has(target.keyword) && !target.json;
}

/**
 * Reads the bodies of the heredocs `line` opens, in order, from the lines after line `consumed`;
 * returns the new count of lines consumed. A body is every line up to one that equals the name
 * (after leading tabs, for `<<-`), taken verbatim with its line ending.
 */
function readHeredocBodies(lines: string[], consumed: number, node: InstructionNode, line: string, problems: Problems): number {
  const instructionEnd = consumed;
  let opened: Heredoc[];
  try {
    opened = openersInLine(line);
  } catch (err) {
    if (!(err instanceof Problem)) throw err;
    problems.add(err.message, err.hint, node.startLine, node.column);
    return consumed;
  }
  for (const heredoc of opened) {
    let terminated = false;
    while (consumed < lines.length) {
      const body = lines[consumed]!;
      consumed++;
      let candidate = trimNewline(body);
      if (heredoc.chomp) candidate = candidate.replace(/^\t+/, '');
      if (candidate === heredoc.name) {
        terminated = true;
        break;
      }
      heredoc.content += body;
    }
    if (!terminated) {
      const at = findOpener(lines, node.startLine, instructionEnd, heredoc) ?? { line: node.startLine, column: node.column };
      problems.add(`unterminated heredoc: no line "${heredoc.name}" ends the here-document`, unterminatedHint(heredoc), at.line, at.column);
      break;
    }
    node.heredocs.push(heredoc);
  }
  return consumed;
}

interface LexedWord {
  text: string;
  /** Some part of the word was in quotes. */
  quoted: boolean;
}

/**
 * Splits text into shell words without expanding anything, as BuildKit's lexer does for heredocs
 * (escape character always `\`). `raw` keeps quotes and escapes in the words (for finding openers
 * on a line); otherwise they are removed (for a heredoc's name). `<<`, an optional `-` and the
 * blanks after them stay in the word that follows, so `<< EOF` is one word. Throws a Problem when a
 * quote or `${` does not close.
 */
function lexShellWords(text: string, raw: boolean): LexedWord[] {
  const words: LexedWord[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  let i = 0;
  const unclosed = (what: string): Problem => new Problem(`unclosed ${what} in ${goQuote(text)}`, `close the ${what}`);
  while (i < text.length) {
    const ch = text[i]!;
    if (isSpace(ch)) {
      if (inWord) words.push({ text: word, quoted });
      word = '';
      inWord = false;
      quoted = false;
      i++;
      continue;
    }
    inWord = true;
    if (ch === '\\') {
      if (i + 1 < text.length) word += raw ? text.slice(i, i + 2) : text[i + 1];
      else if (raw) word += ch;
      i += 2;
    } else if (ch === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) throw unclosed('single quote');
      word += raw ? text.slice(i, close + 1) : text.slice(i + 1, close);
      quoted = true;
      i = close + 1;
    } else if (ch === '"') {
      let j = i + 1;
      let inner = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        // Inside double quotes the escape only escapes `"`, `\` and `$`; before anything else it is literal.
        if (text[j] === '\\' && j + 1 < text.length && '"\\$'.includes(text[j + 1]!)) {
          inner += raw ? text.slice(j, j + 2) : text[j + 1];
          j++;
        } else {
          inner += text[j];
        }
      }
      if (j >= text.length) throw unclosed('double quote');
      word += raw ? `"${inner}"` : inner;
      quoted = true;
      i = j + 1;
    } else if (ch === '$' && text[i + 1] === '{') {
      // Variables are not expanded here, but `${a b}` is still one word.
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}' && --depth === 0) break;
      }
      if (j >= text.length) throw unclosed("'${'");
      word += text.slice(i, j + 1);
      i = j + 1;
    } else if (ch === '<' && text[i + 1] === '<') {
      let j = i + 2;
      if (text[j] === '-') j++;
      while (text[j] === ' ' || text[j] === '\t') j++;
      word += text.slice(i, j);
      i = j;
    } else {
      word += ch;
      i++;
    }
  }
  if (inWord) words.push({ text: word, quoted });
  return words;
}

/** Where a heredoc was opened, to point at its `<<` rather than at the instruction's keyword. */
function findOpener(lines: string[], startLine: number, endLine: number, heredoc: Heredoc): { line: number; column: number } | null {
  const opener = new RegExp(`<<-?[ \\t]*['"]?${escapeRegExp(heredoc.name)}`);
  for (let n = startLine; n <= endLine; n++) {
    const at = lines[n - 1]!.search(opener);
    if (at >= 0) return { line: n, column: at + 1 };
  }
  return null;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function unterminatedHint(heredoc: Heredoc): string {
  const terminator = `end it with a line that is exactly "${heredoc.name}"`;
  return heredoc.chomp
    ? `${terminator} (with <<- it may be indented with tabs, not spaces)`
    : `${terminator}, starting in column 1 with nothing after it (use <<- to allow tab indentation)`;
}

// ---------------------------------------------------------------------------------------------
// Problems and Go-compatible quoting

/** Collects every problem of one pass, then throws them as one LadingError with the rest in `related`. */
class Problems {
  private readonly found: LadingError[] = [];

  constructor(
    private readonly file: string,
    private readonly lines: string[],
  ) {}

  add(message: string, hint: string, line: number, column: number): void {
    const text = trimNewline(this.lines[line - 1] ?? '');
    this.found.push(
      new LadingError(ERROR_CODES.DOCKERFILE_PARSE, message, { hint, location: { file: this.file, line, column, text } }),
    );
  }

  empty(): boolean {
    return this.found.length === 0;
  }

  throwIfAny(): void {
    const [first, ...rest] = this.found;
    if (!first) return;
    throw new LadingError(first.code, first.message, { hint: first.hint, location: first.location, related: rest });
  }
}

const GO_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};
/** Go's unicode.IsPrint: letters, marks, numbers, punctuation and symbols (ASCII space is handled apart). */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's strconv.Quote, which BuildKit's dump uses for every word. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (GO_ESCAPES[ch] !== undefined) out += GO_ESCAPES[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0xd800 || cp > 0xdfff ? PRINTABLE.test(ch) : false) out += ch;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}
