/**
 * Dockerfile word expansion: quotes, escapes and `$VAR` / `${VAR...}` references, behaving like
 * BuildKit's shell lexer (frontend/dockerfile/shell) so that a Dockerfile means the same thing here
 * as under `docker build`. Conformance: BuildKit's envVarTest and wordsTest vectors.
 *
 * Besides the expanded text, every expansion reports which variables it looked up and whether they
 * were set: the engine keys its cache on the build args a step really used and warns about unused
 * `--build-arg`s from the same sets.
 */
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';

/** Where variable values come from: a map, or a function answering `undefined` for unset names. */
export type EnvLookup = ReadonlyMap<string, string> | ((name: string) => string | undefined);

export interface WordResult {
  value: string;
  /** Variables looked up that were set (even to the empty string). */
  matched: Set<string>;
  /** Variables looked up that were not set. */
  unmatched: Set<string>;
}

export interface WordsResult {
  words: string[];
  matched: Set<string>;
  unmatched: Set<string>;
}

/** BuildKit's optional lexer modes, used for heredocs and partial (ARG-only) expansion. */
export interface ShellLexOptions {
  /** Keep quote characters in the output (BuildKit `RawQuotes`). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output (BuildKit `RawEscapes`). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (BuildKit `SkipProcessQuotes`). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (BuildKit `SkipUnsetEnv`). */
  skipUnsetEnv?: boolean;
}

export class ShellLex {
  readonly escapeToken: '\\' | '`';
  private readonly options: Readonly<ShellLexOptions>;

  constructor(escapeToken: '\\' | '`' = '\\', options: ShellLexOptions = {}) {
    this.escapeToken = escapeToken;
    this.options = { ...options };
  }

  /** Expand one word: quotes removed, escapes applied, variables substituted; spaces kept. */
  processWord(word: string, env: EnvLookup): WordResult {
    const exp = new Expansion(word, env, this.escapeToken, this.options);
    const { text } = exp.run(false);
    return { value: text, matched: exp.matched, unmatched: exp.unmatched };
  }

  /**
   * Expand, then split into words at unquoted, unescaped white space. Text that came from a
   * variable is split too (as in a shell); quoted text never is.
   */
  processWords(word: string, env: EnvLookup): WordsResult {
    const exp = new Expansion(word, env, this.escapeToken, this.options);
    const { words } = exp.run(true);
    return { words, matched: exp.matched, unmatched: exp.unmatched };
  }
}

/**
 * Attach the Dockerfile position of a word to an expansion error. `wordStart` is where the word
 * begins; when it has a column, the error's column points at the offending character.
 */
export function locateShellError(err: unknown, wordStart: SourceLocation): unknown {
  if (!(err instanceof LadingError) || err.details.shellColumn === undefined) return err;
  const inWord = err.details.shellColumn as number;
  const column = wordStart.column === undefined ? undefined : wordStart.column + inWord - 1;
  return new LadingError(err.code, err.message, {
    hint: err.hint,
    location: { ...wordStart, column },
    cause: err.cause,
    related: err.related,
    details: { ...err.details, column },
  });
}

// ---------------------------------------------------------------------------------------------

const EOF = -1;
const BOM = 0xfeff;

/** A syntax problem found while scanning; turned into a LadingError at the top. */
class ShellSyntaxError extends Error {
  constructor(
    readonly reason: string,
    readonly hint: string,
    /** UTF-16 offset in the word where the problem starts. */
    readonly offset: number,
  ) {
    super(reason);
  }
}

const MODIFIERS_HINT =
  'supported forms: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:+alt}, ${NAME+alt}, ' +
  '${NAME:?message}, ${NAME?message}, ${NAME#pattern}, ${NAME##pattern}, ${NAME%pattern}, ' +
  '${NAME%%pattern}, ${NAME/pattern/replacement}, ${NAME//pattern/replacement}';

/**
 * One expansion of one word. Mirrors the structure of a recursive-descent scanner: a `$` or quote
 * hands control to its own method, and `${NAME:-word}` scans its nested word with the same
 * scanner, stopping at the closing brace.
 */
class Expansion {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private pos = 0;
  private rawEscapes: boolean;
  private readonly escape: number;

  constructor(
    private readonly src: string,
    private readonly env: EnvLookup,
    escapeToken: '\\' | '`',
    private readonly options: Readonly<ShellLexOptions>,
  ) {
    this.escape = escapeToken.codePointAt(0)!;
    this.rawEscapes = options.rawEscapes === true;
    // BuildKit reads words with Go's text/scanner, which drops a byte-order mark at the start.
    if (src.codePointAt(0) === BOM) this.pos = 1;
  }

  run(split: boolean): { text: string; words: string[] } {
    try {
      return this.scanUntil(EOF, this.rawEscapes, split ? new WordSplitter() : undefined);
    } catch (err) {
      if (!(err instanceof ShellSyntaxError)) throw err;
      const column = columnOf(this.src, err.offset);
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `failed to process ${JSON.stringify(this.src)}: ${err.reason}`, {
        hint: err.hint,
        details: { shellColumn: column, column, word: this.src, reason: err.reason },
      });
    }
  }

  private peek(): number {
    return this.pos < this.src.length ? this.src.codePointAt(this.pos)! : EOF;
  }

  private next(): number {
    const ch = this.peek();
    if (ch !== EOF) this.pos += ch > 0xffff ? 2 : 1;
    return ch;
  }

  /**
   * Scan until `stop` (consumed) or the end of the word. `split` collects the words for
   * processWords; nested scans pass none since BuildKit discards their split.
   */
  private scanUntil(stop: number, rawEscapes: boolean, split: WordSplitter | undefined): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = '';
      const quotes = this.options.skipProcessQuotes !== true;
      for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
        if (stop !== EOF && ch === stop) {
          this.next();
          return { text, words: split?.finish() ?? [] };
        }
        if (ch === 0x24 /* $ */) {
          const value = this.dollar();
          text += value;
          split?.addExpanded(value);
        } else if (quotes && (ch === 0x27 /* ' */ || ch === 0x22) /* " */) {
          const value = ch === 0x27 ? this.singleQuoted() : this.doubleQuoted();
          text += value;
          split?.addRaw(value);
        } else {
          this.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              text += String.fromCodePoint(ch);
              split?.addRaw(String.fromCodePoint(ch));
            }
            const escaped = this.next();
            // An escape at the very end of the word is dropped (BuildKit: "escapes, except end of line").
            if (escaped === EOF) break;
            const s = String.fromCodePoint(escaped);
            text += s;
            split?.addRaw(s);
          } else {
            const s = String.fromCodePoint(ch);
            text += s;
            split?.addChar(s, ch);
          }
        }
      }
      if (stop !== EOF) {
        throw new ShellSyntaxError(
          `unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`,
          `add the missing '${String.fromCodePoint(stop)}'`,
          this.pos,
        );
      }
      return { text, words: split?.finish() ?? [] };
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** Everything up to the next `'` is literal; a single quote cannot be escaped inside. */
  private singleQuoted(): string {
    const start = this.pos;
    this.next();
    const raw = this.options.rawQuotes === true;
    let out = raw ? "'" : '';
    for (;;) {
      const ch = this.next();
      if (ch === EOF) {
        throw new ShellSyntaxError(
          'unexpected end of statement while looking for matching single-quote',
          `close the quote with ', or write ${this.escapeText()}' for a literal quote`,
          start,
        );
      }
      if (ch === 0x27) return raw ? out + "'" : out;
      out += String.fromCodePoint(ch);
    }
  }

  /**
   * Inside double quotes `$` still expands; the escape character escapes only `"`, `$` and itself
   * and is kept literally before anything else (POSIX sh rules, as BuildKit applies them).
   */
  private doubleQuoted(): string {
    const start = this.pos;
    this.next();
    const raw = this.options.rawQuotes === true;
    let out = raw ? '"' : '';
    for (;;) {
      const ch = this.peek();
      if (ch === EOF) {
        throw new ShellSyntaxError(
          'unexpected end of statement while looking for matching double-quote',
          `close the quote with ", or write ${this.escapeText()}" for a literal quote`,
          start,
        );
      }
      if (ch === 0x22) {
        this.next();
        return raw ? out + '"' : out;
      }
      if (ch === 0x24) {
        out += this.dollar();
        continue;
      }
      let c = this.next();
      if (c === this.escape) {
        if (this.rawEscapes) out += String.fromCodePoint(c);
        const after = this.peek();
        // A trailing escape is dropped; the missing quote is reported on the next turn.
        if (after === EOF) continue;
        if (after === 0x22 || after === 0x24 || after === this.escape) c = this.next();
      }
      out += String.fromCodePoint(c);
    }
  }

  /** `$NAME`, `${NAME}` or `${NAME<modifier>...}`; the scanner sits on the `$`. */
  private dollar(): string {
    const start = this.pos;
    this.next();
    if (this.peek() !== 0x7b /* { */) {
      const name = this.name();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv === true) return '$' + name;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw this.missingBrace(start);
    if (first === 0x7b || first === 0x7d || first === 0x3a /* { } : */) throw this.badSubstitution(start);

    const name = this.name();
    const op = this.next();
    switch (op) {
      case 0x7d: {
        const value = this.lookup(name);
        if (value === undefined && this.options.skipUnsetEnv === true) return `\${${name}}`;
        return value ?? '';
      }
      case 0x3a: // ':'
      case 0x2b: // '+'
      case 0x2d: // '-'
      case 0x3f: // '?'
      case 0x23: // '#'
      case 0x25: // '%'
        return this.modifier(start, name, op);
      case 0x2f: // '/'
        return this.replace(start, name);
      default:
        if (op === EOF) throw this.missingBrace(start);
        if (name === '') throw this.badSubstitution(start);
        throw this.unsupportedModifier(start, String.fromCodePoint(op));
    }
  }

  /** `${NAME:-w}`, `${NAME-w}`, `${NAME:+w}`, `${NAME+w}`, `${NAME:?w}`, `${NAME?w}`, `${NAME#p}`, `${NAME%p}`. */
  private modifier(start: number, name: string, first: number): string {
    let op = first;
    let spelled = String.fromCodePoint(first);
    const nullIsUnset = first === 0x3a;
    if (nullIsUnset) {
      op = this.next();
      spelled += op === EOF ? '' : String.fromCodePoint(op);
    }
    const isTrim = op === 0x23 || op === 0x25;
    if (nullIsUnset && isTrim) throw this.unsupportedModifier(start, spelled);

    // Patterns keep their escapes: the pattern compiler gives `\*`, `\?` and `\\` their meaning.
    const word = this.nested(start, 0x7d, isTrim, `missing '}'`).text;
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv === true) return `\${${name}${spelled}${word}}`;

    switch (op) {
      case 0x2d: // '-'
        return value === undefined || (nullIsUnset && value === '') ? word : value;
      case 0x2b: // '+'
        return value === undefined || (nullIsUnset && value === '') ? '' : word;
      case 0x3f: {
        // '?'
        if (value === undefined || (nullIsUnset && value === '')) {
          const message = word !== '' ? word : value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty';
          throw new ShellSyntaxError(`${name}: ${message}`, `set ${name} with ARG or ENV, or pass --build-arg ${name}=<value>`, start);
        }
        return value;
      }
      case 0x23: // '#'
      case 0x25: {
        // '%': one sign trims the shortest match, two the longest
        const greedy = word.codePointAt(0) === op;
        const pattern = greedy ? word.slice(1) : word;
        return op === 0x25
          ? trimSuffix(pattern, value ?? '', greedy, start)
          : trimPrefix(pattern, value ?? '', greedy, start);
      }
      default:
        throw this.unsupportedModifier(start, spelled);
    }
  }

  /** `${NAME/pattern/replacement}` (first match) and `${NAME//pattern/replacement}` (all). */
  private replace(start: number, name: string): string {
    const all = this.peek() === 0x2f;
    if (all) this.next();
    const pattern = this.nested(start, 0x2f, true, `missing '/' in \${}`).text;
    const replacement = this.nested(start, 0x7d, true, `missing '}'`).text;
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv === true) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegExp(pattern, true, false, start);
    return all ? replaceAllLikeGo(value ?? '', re, replacement) : replaceFirst(value ?? '', re, replacement);
  }

  /** Scan the word inside `${...}`; running off the end is reported as the missing delimiter. */
  private nested(start: number, stop: number, rawEscapes: boolean, missing: string): { text: string; words: string[] } {
    try {
      return this.scanUntil(stop, rawEscapes, undefined);
    } catch (err) {
      if (err instanceof ShellSyntaxError && this.peek() === EOF) {
        throw new ShellSyntaxError(`syntax error: ${missing}`, `close the variable reference that starts here with '}'`, start);
      }
      throw err;
    }
  }

  /**
   * A variable name: letters, digits and `_`; or a run of digits (positional parameter); or one
   * special parameter character. Positional and special parameters are never set in a Dockerfile.
   */
  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += String.fromCodePoint(this.next());
        return name;
      }
      if (name === '' && isSpecialParam(ch)) {
        this.next();
        return String.fromCodePoint(ch);
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      this.next();
      name += String.fromCodePoint(ch);
    }
    return name;
  }

  private lookup(name: string): string | undefined {
    const env = this.env;
    const value = typeof env === 'function' ? env(name) : env.has(name) ? env.get(name) : undefined;
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  private escapeText(): string {
    return String.fromCodePoint(this.escape);
  }

  private missingBrace(start: number): ShellSyntaxError {
    return new ShellSyntaxError(
      "syntax error: missing '}'",
      `close the variable reference with '}', or write ${this.escapeText()}$ for a literal dollar sign`,
      start,
    );
  }

  private badSubstitution(start: number): ShellSyntaxError {
    return new ShellSyntaxError(
      'syntax error: bad substitution',
      `a variable name must follow '\${'; write ${this.escapeText()}\${ for a literal '\${'`,
      start,
    );
  }

  private unsupportedModifier(start: number, spelled: string): ShellSyntaxError {
    return new ShellSyntaxError(`unsupported modifier (${spelled}) in substitution`, MODIFIERS_HINT, start);
  }
}

/** Collects words for processWords: unquoted white space separates, everything else joins. */
class WordSplitter {
  private readonly words: string[] = [];
  private current = '';

  /** A character that was neither quoted nor escaped. */
  addChar(s: string, ch: number): void {
    if (isGoSpace(ch)) {
      if (this.current !== '') {
        this.words.push(this.current);
        this.current = '';
      }
    } else {
      this.current += s;
    }
  }

  /** Text from a variable: split like unquoted text. */
  addExpanded(value: string): void {
    for (const s of value) this.addChar(s, s.codePointAt(0)!);
  }

  /** Quoted or escaped text: never split. */
  addRaw(value: string): void {
    this.current += value;
  }

  finish(): string[] {
    if (this.current !== '') {
      this.words.push(this.current);
      this.current = '';
    }
    return this.words;
  }
}

// --- character classes, as Go's unicode package defines them --------------------------------------

const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;

function isLetter(ch: number): boolean {
  if (ch < 0x80) return (ch >= 0x41 && ch <= 0x5a) || (ch >= 0x61 && ch <= 0x7a);
  return LETTER.test(String.fromCodePoint(ch));
}

function isDigit(ch: number): boolean {
  if (ch < 0x80) return ch >= 0x30 && ch <= 0x39;
  return DIGIT.test(String.fromCodePoint(ch));
}

/** Go's unicode.IsSpace, which differs from JavaScript's \s (U+0085 yes, U+FEFF no). */
function isGoSpace(ch: number): boolean {
  switch (ch) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
    default:
      return ch >= 0x2000 && ch <= 0x200a;
  }
}

/** POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`). */
function isSpecialParam(ch: number): boolean {
  switch (ch) {
    case 0x40: case 0x2a: case 0x23: case 0x3f: case 0x2d: case 0x24: case 0x21: case 0x30:
      return true;
    default:
      return false;
  }
}

function columnOf(src: string, offset: number): number {
  let column = 1;
  for (let i = 0; i < offset && i < src.length; i++) {
    const c = src.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < src.length) i++;
    column++;
  }
  return column;
}

// --- ${NAME#pattern}, ${NAME%pattern}, ${NAME/pattern/replacement} --------------------------------

/**
 * Shell pattern → RegExp: `*` is any run of characters, `?` one character, `\` escapes only `*`,
 * `?` and `\` (and is dropped before `}` and `/`, which had to be escaped to end the pattern).
 * No bracket expressions, as in BuildKit. Go's `.` excludes only "\n", hence `[^\n]`.
 */
function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean, start: number): RegExp {
  const chars = Array.from(pattern);
  if (chars[0] === '\ufeff') chars.shift();
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    switch (c) {
      case '*':
        out += greedy ? '[^\\n]*' : '[^\\n]*?';
        break;
      case '?':
        out += '[^\\n]';
        break;
      case '\\': {
        const after = chars[i + 1];
        if (after === '}' || after === '/') break;
        if (after !== '*' && after !== '?' && after !== '\\') {
          throw new ShellSyntaxError(
            `invalid pattern (${pattern}) in substitution: invalid escape '\\${after ?? ''}'`,
            'in a substitution pattern only \\*, \\?, \\\\, \\} and \\/ are escapes',
            start,
          );
        }
        out += '\\' + after;
        i++;
        break;
      }
      case '[': case ']': case '{': case '}': case '.': case '+': case '(': case ')': case '|': case '^': case '$':
        out += '\\' + c;
        break;
      default:
        out += c;
    }
  }
  return new RegExp(out, anchored ? 'u' : 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean, start: number): string {
  const m = shellPatternToRegExp(pattern, greedy, true, start).exec(value);
  return m === null ? value : value.slice(m[0].length);
}

/** The shortest or longest matching suffix is found as a prefix of the reversed value. */
function trimSuffix(pattern: string, value: string, greedy: boolean, start: number): string {
  const reversed = trimPrefix(reversePattern(pattern), reverseString(value), greedy, start);
  return reverseString(reversed);
}

/** Reverse by characters, keeping each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out = new Array<string>(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const at = last - i;
    if (chars[i] === '\\' && i !== last) {
      out[at - 1] = '\\';
      out[at] = chars[i + 1];
      i += 2;
    } else {
      out[at] = chars[i];
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

/** `${NAME/p/r}`: the replacement is inserted literally at the first match. */
function replaceFirst(value: string, re: RegExp, replacement: string): string {
  re.lastIndex = 0;
  const m = re.exec(value);
  if (m === null) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}

/**
 * `${NAME//p/r}` replaces like Go's Regexp.ReplaceAllString: an empty match right after a match is
 * not replaced, and the replacement is a template in which `$0` / `${0}` is the match and `$$` a
 * dollar sign (BuildKit passes it through unchanged, so these reach the user).
 */
function replaceAllLikeGo(value: string, re: RegExp, replacement: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= value.length) {
    re.lastIndex = searchPos;
    const m = re.exec(value);
    if (m === null) break;
    const a0 = m.index;
    const a1 = m.index + m[0].length;
    out += value.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += expandGoTemplate(replacement, m[0]);
    lastMatchEnd = a1;
    const cp = value.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + value.slice(lastMatchEnd);
}

/** Go's Regexp.Expand for a regexp whose only group is the whole match. */
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let rest = template;
  for (;;) {
    const dollar = rest.indexOf('$');
    if (dollar < 0) break;
    out += rest.slice(0, dollar);
    rest = rest.slice(dollar + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = /^(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u.exec(rest);
    if (ref === null) {
      out += '$';
      continue;
    }
    rest = rest.slice(ref[0].length);
    // Only group 0 exists: "0" names it; other numbers and names expand to nothing.
    if ((ref[1] ?? ref[2]) === '0') out += match;
  }
  return out + rest;
}
