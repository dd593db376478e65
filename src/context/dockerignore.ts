/**
 * `.dockerignore` with the semantics of moby/patternmatcher (what BuildKit, docker/cli and moby
 * use): reading the file like `ignorefile.ReadAll`, cleaning and validating patterns like
 * `patternmatcher.New`, and matching like `MatchesOrParentMatches` — the last pattern that matches
 * a path or one of its parent directories decides, `!` patterns re-include.
 *
 * Each pattern is compiled once: to an equality, prefix or suffix test where patternmatcher uses
 * one (their results differ from the regexp in corner cases, so they are part of the semantics),
 * otherwise to the regexp patternmatcher builds, translated from Go's regexp syntax to ours.
 * Parent-directory results are cached per directory, since a walk asks about every file in it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';

export interface IgnorePattern {
  /** The cleaned pattern, without its leading `!`. */
  pattern: string;
  /** A `!` pattern: re-includes what earlier patterns excluded. */
  exclusion: boolean;
  /** 1-based line in the ignore file. */
  line: number;
}

/** One non-comment, non-empty line as ignorefile.ReadAll returns it (`!` still attached). */
export interface IgnoreLine {
  text: string;
  line: number;
}

/**
 * Read an ignore file's lines like ignorefile.ReadAll: a UTF-8 BOM dropped from the first line,
 * lines starting with `#` skipped (no leading-space tolerance), white space trimmed, empty lines
 * dropped, each pattern path-cleaned with a single leading `/` removed (`! /x` becomes `!x`).
 * Nothing is validated here; see parseDockerignore.
 */
export function readIgnoreLines(text: string): IgnoreLine[] {
  const out: IgnoreLine[] = [];
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (index === 0 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = trimGoSpace(line);
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = trimGoSpace(pattern.slice(1));
    if (pattern !== '') {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push({ text: invert ? '!' + pattern : pattern, line: index + 1 });
  });
  return out;
}

/**
 * Parse `.dockerignore` text into validated patterns. A lone `!` and malformed bracket expressions
 * are errors naming `file:line`, as they make Docker's build fail too.
 */
export function parseDockerignore(text: string, file: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (const { text: raw, line } of readIgnoreLines(text)) {
    const p = toPattern(raw, line, file);
    if (p === undefined) continue;
    compile(p, file); // validation only; the matcher compiles again
    out.push(p);
  }
  return out;
}

/**
 * Decides which context paths `.dockerignore` excludes. Paths are context-relative with `/`
 * separators and no leading `./` (as a walk produces them); they are not cleaned, like Docker's
 * matcher, so `a/` and `a` may differ. The context root (`''` or `.`) is never excluded.
 */
export class IgnoreMatcher {
  readonly hasExceptions: boolean;
  private readonly patterns: Compiled[];
  /** Per parent directory: for each pattern, whether it matches that directory or one above. */
  private readonly parentCache = new Map<string, Uint8Array>();

  constructor(patterns: IgnorePattern[], file = '.dockerignore') {
    const compiled: Compiled[] = [];
    for (const given of patterns) {
      // Re-clean as patternmatcher.New does, so hand-made patterns behave like parsed ones.
      const p = toPattern((given.exclusion ? '!' : '') + given.pattern, given.line, file);
      if (p !== undefined) compiled.push(compile(p, file));
    }
    this.patterns = compiled;
    this.hasExceptions = compiled.some((p) => p.exclusion);
  }

  /** True when `path` is excluded: the last pattern matching it or a parent directory is not a `!` one. */
  excludes(path: string): boolean {
    const patterns = this.patterns;
    if (patterns.length === 0 || path === '' || path === '.') return false;
    const parent = goDir(path);
    const above = parent === '.' ? undefined : this.parentMatches(parent);
    let excluded = false;
    for (let i = 0; i < patterns.length; i++) {
      const p = patterns[i];
      // Only a pattern that can flip the answer needs evaluating.
      if (p.exclusion !== excluded) continue;
      if ((above !== undefined && above[i] === 1) || matches(p, path)) excluded = !p.exclusion;
    }
    return excluded;
  }

  /**
   * True when `dir` is excluded and nothing below it can be re-included, so a walk may skip it.
   * Sound, not complete: a `false` only means "walk it and ask about each path".
   */
  canSkipDir(dir: string): boolean {
    const patterns = this.patterns;
    if (patterns.length === 0 || !isCleanRelative(dir)) return false;
    // Which patterns match dir itself or a directory above it, and the last of them.
    const own = this.parentMatches(dir);
    let last = -1;
    for (let i = patterns.length - 1; i >= 0; i--) {
      if (own[i] === 1) {
        last = i;
        break;
      }
    }
    if (last < 0 || patterns[last].exclusion) return false;
    // Every path below dir is matched by pattern `last` too (through its parent dir), so only a
    // later `!` pattern could re-include something, and only one that reaches below dir.
    const segments = dir.split('/');
    for (let i = last + 1; i < patterns.length; i++) {
      if (patterns[i].exclusion && mayMatchBelow(patterns[i].plan, segments)) return false;
    }
    return true;
  }

  private parentMatches(dir: string): Uint8Array {
    let v = this.parentCache.get(dir);
    if (v !== undefined) return v;
    const slash = dir.lastIndexOf('/');
    const up = slash < 0 ? undefined : this.parentMatches(dir.slice(0, slash));
    v = new Uint8Array(this.patterns.length);
    for (let i = 0; i < v.length; i++) v[i] = (up !== undefined && up[i] === 1) || matches(this.patterns[i], dir) ? 1 : 0;
    // Bounded by the number of directories a context has; cleared rather than grown without end.
    if (this.parentCache.size >= 100_000) this.parentCache.clear();
    this.parentCache.set(dir, v);
    return v;
  }
}

/**
 * The ignore file for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<context>/.dockerignore`, as in BuildKit; the two are never merged. `dockerfilePath` is
 * resolved against the current directory (like `-f`) and defaults to `<context>/Dockerfile`.
 */
export async function readDockerignore(contextDir: string, dockerfilePath?: string): Promise<IgnorePattern[]> {
  const dockerfile = path.resolve(dockerfilePath ?? path.join(contextDir, 'Dockerfile'));
  for (const candidate of [`${dockerfile}.dockerignore`, path.join(path.resolve(contextDir), '.dockerignore')]) {
    let text: string;
    try {
      text = await fs.readFile(candidate, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw fsError(ERROR_CODES.CONTEXT, 'read', candidate, err, 'make the ignore file readable, or remove it');
    }
    return parseDockerignore(text, displayPath(candidate));
  }
  return [];
}

// --- pattern compilation -------------------------------------------------------------------------

const enum Kind {
  Exact,
  Prefix,
  Suffix,
  Regexp,
}

interface Compiled {
  exclusion: boolean;
  kind: Kind;
  /** Exact: the pattern; Prefix: it without the trailing `**`; Suffix: it without the leading `**`. */
  text: string;
  re?: RegExp;
  /** How the pattern lines up with path segments, for canSkipDir. */
  plan: Segment[];
}

function matches(p: Compiled, path: string): boolean {
  switch (p.kind) {
    case Kind.Exact:
      return path === p.text;
    case Kind.Prefix:
      return path.startsWith(p.text);
    case Kind.Suffix:
      // `**/foo` also matches `foo` itself.
      return path.endsWith(p.text) || (p.text.startsWith('/') && path === p.text.slice(1));
    case Kind.Regexp:
      return p.re!.test(path);
  }
}

/** patternmatcher.New's per-pattern steps: trim, clean, split off `!`; undefined for empty ones. */
function toPattern(raw: string, line: number, file: string): IgnorePattern | undefined {
  let p = trimGoSpace(raw);
  if (p === '') return undefined;
  p = cleanPath(p);
  const exclusion = p.startsWith('!');
  if (exclusion) {
    if (p.length === 1) {
      throw patternError(file, line, raw, 'illegal exclusion pattern: "!"', 'write !PATTERN to re-include what PATTERN matches, or delete the line');
    }
    p = p.slice(1);
  }
  const syntax = globSyntaxError(p);
  if (syntax !== undefined) throw patternError(file, line, raw, `invalid pattern ${JSON.stringify(p)}: ${syntax}`, BRACKET_HINT);
  return { pattern: p, exclusion, line };
}

const BRACKET_HINT = 'write \\[, \\], \\* or \\? to match those characters literally; a [...] class needs its closing ], and a - in it needs a character on both sides';

function patternError(file: string, line: number, text: string, message: string, hint: string): LadingError {
  return new LadingError(ERROR_CODES.DOCKERIGNORE, message, { location: { file, line, text }, hint });
}

/** A validated pattern, ready to match. */
function compile(p: IgnorePattern, file: string): Compiled {
  const { kind, goRegexp } = classify(p.pattern);
  const plan = planSegments(p.pattern, kind);
  switch (kind) {
    case Kind.Exact:
      return { exclusion: p.exclusion, kind, text: p.pattern, plan };
    case Kind.Prefix:
      return { exclusion: p.exclusion, kind, text: p.pattern.slice(0, -2), plan };
    case Kind.Suffix:
      return { exclusion: p.exclusion, kind, text: p.pattern.slice(2), plan };
    case Kind.Regexp: {
      let compiled: RegExp;
      try {
        compiled = new RegExp(goRegexpToJs(goRegexp), 'u');
      } catch (err) {
        const why = err instanceof GoSyntaxError ? err.message : 'unsupported regular expression';
        throw patternError(file, p.line, (p.exclusion ? '!' : '') + p.pattern, `invalid pattern ${JSON.stringify(p.pattern)}: ${why}`, BRACKET_HINT);
      }
      return { exclusion: p.exclusion, kind, text: p.pattern, re: compiled, plan };
    }
  }
}

/**
 * How patternmatcher compiles a cleaned pattern (without `!`): its match type and, for
 * regexpMatch, the Go regexp it builds. Exposed for conformance tests and debugging.
 */
export function describePattern(pattern: string): { matchType: 'exactMatch' | 'prefixMatch' | 'suffixMatch' | 'regexpMatch'; regexp: string | null } {
  const { kind, goRegexp } = classify(pattern);
  const matchType = (['exactMatch', 'prefixMatch', 'suffixMatch', 'regexpMatch'] as const)[kind];
  return { matchType, regexp: kind === Kind.Regexp ? goRegexp : null };
}

/**
 * patternmatcher's compile: `**` spans directories (and a `/` after it is eaten), `*` and `?` stay
 * within one, `\` escapes, `[...]` passes through to the regexp. Patterns with no special
 * characters, or with `**` only at one end, become string tests exactly as patternmatcher decides.
 */
function classify(pattern: string): { kind: Kind; goRegexp: string } {
  const chars = Array.from(pattern);
  let re = '^';
  let kind = Kind.Exact;
  for (let k = 0, step = 0; k < chars.length; step++) {
    const ch = chars[k++];
    if (ch === '*') {
      if (chars[k] === '*') {
        k++;
        if (chars[k] === '/') k++;
        if (k >= chars.length) {
          if (kind === Kind.Exact) kind = Kind.Prefix;
          else {
            re += '.*';
            kind = Kind.Regexp;
          }
        } else {
          re += '(.*/)?';
          kind = Kind.Regexp;
        }
        if (step === 0) kind = Kind.Suffix;
      } else {
        re += '[^/]*';
        kind = Kind.Regexp;
      }
    } else if (ch === '?') {
      re += '[^/]';
      kind = Kind.Regexp;
    } else if ('.+()|{}$'.includes(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (k < chars.length) {
        re += '\\' + chars[k++];
        kind = Kind.Regexp;
      } else {
        re += '\\'; // unreachable: a trailing backslash fails validation first
      }
    } else if (ch === '[' || ch === ']') {
      re += ch;
      kind = Kind.Regexp;
    } else {
      re += ch;
    }
  }

  return { kind, goRegexp: re + '$' };
}

// --- canSkipDir: can a pattern match anything below a directory? ---------------------------------

/**
 * A pattern cut at its `/`s. `any` stands for a segment whose reach we do not analyse (`**`,
 * bracket expressions, unusual escapes): from there on the pattern may match anything.
 */
type Segment = { kind: 'literal'; text: string } | { kind: 'glob'; re: RegExp } | { kind: 'any' };

function planSegments(pattern: string, kind: Kind): Segment[] {
  if (kind === Kind.Suffix) return [{ kind: 'any' }];
  const plan: Segment[] = [];
  for (const seg of splitTopLevel(pattern)) {
    if (seg.includes('**') || seg.includes('[') || seg.includes(']') || /\\(?:[\p{L}\p{N}/]|$)/u.test(seg)) {
      plan.push({ kind: 'any' });
      return plan;
    }
    if (!/[*?\\]/.test(seg)) {
      plan.push({ kind: 'literal', text: seg });
      continue;
    }
    let re = '^';
    for (let k = 0; k < seg.length; k++) {
      const c = seg[k];
      if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else if (c === '\\') re += escapeJs(seg[++k]);
      else re += escapeJs(c);
    }
    plan.push({ kind: 'glob', re: new RegExp(re + '$', 'u') });
  }
  return plan;
}

/** Split at `/`, keeping escaped characters and bracket expressions whole. */
function splitTopLevel(pattern: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inClass = false;
  for (let k = 0; k < pattern.length; k++) {
    const c = pattern[k];
    if (c === '\\') k++;
    else if (c === '[') inClass = true;
    else if (c === ']') inClass = false;
    else if (c === '/' && !inClass) {
      out.push(pattern.slice(start, k));
      start = k + 1;
    }
  }
  out.push(pattern.slice(start));
  return out;
}

/**
 * Could a pattern with this plan match some path strictly below the directory `dir`? Literal and
 * simple glob segments each match exactly one path segment, so a plan of such segments matches
 * only paths of its own depth, starting with matching segments.
 */
function mayMatchBelow(plan: Segment[], dir: string[]): boolean {
  for (let i = 0; i < dir.length; i++) {
    if (i >= plan.length) return false;
    const s = plan[i];
    if (s.kind === 'any') return true;
    if (s.kind === 'literal' ? s.text !== dir[i] : !s.re.test(dir[i])) return false;
  }
  return true;
}

// --- Go's filepath.Match syntax check --------------------------------------------------------------

/**
 * What patternmatcher.New rejects: filepath.Match's syntax errors (unclosed `[`, `[]`, a `-` or
 * `]` where a class character must be, a trailing `\`). Returns the reason, or undefined.
 */
function globSyntaxError(pattern: string): string | undefined {
  const cs = Array.from(pattern);
  let i = 0;
  while (i < cs.length) {
    while (i < cs.length && cs[i] === '*') i++;
    // A chunk runs to the next `*` outside brackets.
    let end = i;
    let inRange = false;
    for (; end < cs.length; end++) {
      const c = cs[end];
      if (c === '\\') {
        if (end + 1 < cs.length) end++;
      } else if (c === '[') inRange = true;
      else if (c === ']') inRange = false;
      else if (c === '*' && !inRange) break;
    }
    const err = chunkSyntaxError(cs, i, end);
    if (err !== undefined) return err;
    i = end;
  }
  return undefined;
}

function chunkSyntaxError(cs: string[], start: number, end: number): string | undefined {
  let k = start;
  // filepath.Match's getEsc: one class character, escaped or not, that must not end the chunk.
  const classChar = (): string | undefined => {
    if (k >= end) return 'unterminated character class';
    if (cs[k] === '-' || cs[k] === ']') return `unexpected '${cs[k]}' in character class`;
    if (cs[k] === '\\') {
      k++;
      if (k >= end) return 'unterminated character class';
    }
    k++;
    if (k >= end) return 'unterminated character class';
    return undefined;
  };
  while (k < end) {
    const c = cs[k];
    if (c === '[') {
      k++;
      if (k < end && cs[k] === '^') k++;
      for (let n = 0; ; n++) {
        if (k < end && cs[k] === ']' && n > 0) {
          k++;
          break;
        }
        const lo = classChar();
        if (lo !== undefined) return lo;
        if (cs[k] === '-') {
          k++;
          const hi = classChar();
          if (hi !== undefined) return hi;
        }
      }
    } else if (c === '\\') {
      k++;
      if (k >= end) return 'trailing backslash';
      k++;
    } else {
      k++;
    }
  }
  return undefined;
}

// --- Go regexp syntax → JavaScript ---------------------------------------------------------------

class GoSyntaxError extends Error {}

/**
 * Translate the regexp patternmatcher builds (Go RE2 syntax, Perl flags) into an equivalent
 * JavaScript `u` regexp. What a pattern's `\x` escapes and `[...]` classes pass through is read
 * the way Go reads it: `\d`, `\s` (ASCII only), `[:alpha:]`, `\pL`, octal and hex escapes, `\Q..\E`.
 */
function goRegexpToJs(src: string): string {
  const cs = Array.from(src);
  let i = 0;
  let out = '';

  const cp = (c: string): number => c.codePointAt(0)!;
  const fail = (why: string): never => {
    throw new GoSyntaxError(why);
  };

  /** parseEscape: `\` and what follows as one character; `i` is on the backslash. */
  const escapedChar = (): number => {
    const c = cs[i + 1];
    if (c === undefined) fail('trailing backslash');
    i += 2;
    const code = cp(c);
    if (code < 0x80 && !/[0-9A-Za-z]/.test(c)) return code;
    if (/[0-7]/.test(c)) {
      if (c !== '0' && !/[0-7]/.test(cs[i] ?? '')) fail(`invalid escape sequence \\${c}`);
      let r = code - 0x30;
      for (let n = 1; n < 3 && /[0-7]/.test(cs[i] ?? ''); n++) r = r * 8 + cp(cs[i++]) - 0x30;
      return r;
    }
    switch (c) {
      case 'a':
        return 7;
      case 'f':
        return 12;
      case 'n':
        return 10;
      case 'r':
        return 13;
      case 't':
        return 9;
      case 'v':
        return 11;
      case 'x': {
        if (cs[i] === '{') {
          const close = cs.indexOf('}', i);
          const hex = close < 0 ? '' : cs.slice(i + 1, close).join('');
          if (!/^[0-9A-Fa-f]+$/.test(hex) || parseInt(hex, 16) > 0x10ffff) fail('invalid escape sequence \\x{...}');
          i = close + 1;
          return parseInt(hex, 16);
        }
        const hex = (cs[i] ?? '') + (cs[i + 1] ?? '');
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) fail('invalid escape sequence \\x');
        i += 2;
        return parseInt(hex, 16);
      }
    }
    return fail(`invalid escape sequence \\${c}`);
  };

  /** `\pL`, `\p{Greek}`, `\PL`, `\p{^Greek}` as class items; `i` is on the backslash. */
  const unicodeClass = (): { items: string; negated: boolean } => {
    let negated = cs[i + 1] === 'P';
    let name: string;
    if (cs[i + 2] === '{') {
      const close = cs.indexOf('}', i + 2);
      if (close < 0) fail('invalid character class range (unclosed \\p{)');
      name = cs.slice(i + 3, close).join('');
      i = close + 1;
    } else {
      name = cs[i + 2] ?? '';
      i += 3;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    return { items: unicodeItems(name), negated };
  };

  const perlItems = (c: string, inClass: boolean): string => {
    switch (c) {
      case 's':
        return inClass ? '\\t\\n\\f\\r ' : '[\\t\\n\\f\\r ]';
      case 'S':
        return inClass ? rangesToClass(complement(GO_SPACE)) : '[^\\t\\n\\f\\r ]';
      default:
        return '\\' + c; // \d \D \w \W are ASCII in both engines
    }
  };

  const classChar = (): number => {
    if (i >= cs.length) fail('missing closing ]');
    if (cs[i] === '\\') return escapedChar();
    return cp(cs[i++]);
  };

  /** A bracket expression; `i` is on the `[`. */
  const bracket = (): string => {
    i++;
    let negated = false;
    if (cs[i] === '^') {
      negated = true;
      i++;
    }
    let items = '';
    for (let first = true; i >= cs.length || cs[i] !== ']' || first; first = false) {
      if (i >= cs.length) fail('missing closing ]');
      if (cs[i] === '[' && cs[i + 1] === ':') {
        const close = findColonBracket(cs, i + 2);
        if (close >= 0) {
          let name = cs.slice(i + 2, close).join('');
          const neg = name.startsWith('^');
          if (neg) name = name.slice(1);
          const group = POSIX_GROUPS[name];
          if (group === undefined) fail(`invalid character class range [:${name}:]`);
          items += rangesToClass(neg ? complement(group) : group);
          i = close + 2;
          continue;
        }
      }
      if (cs[i] === '\\' && (cs[i + 1] === 'p' || cs[i + 1] === 'P')) {
        const u = unicodeClass();
        items += u.negated ? negateUnicodeItems(u.items) : u.items;
        continue;
      }
      if (cs[i] === '\\' && /^[dDsSwW]$/.test(cs[i + 1] ?? '')) {
        items += perlItems(cs[i + 1], true);
        i += 2;
        continue;
      }
      const lo = classChar();
      let hi = lo;
      if (cs[i] === '-' && i + 1 < cs.length && cs[i + 1] !== ']') {
        i++;
        hi = classChar();
        if (hi < lo) fail(`invalid character class range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}`);
      }
      items += rangesToClass([[lo, hi]]);
    }
    i++;
    return (negated ? '[^' : '[') + items + ']';
  };

  while (i < cs.length) {
    const c = cs[i];
    if (c === '\\') {
      const e = cs[i + 1];
      if (e === undefined) fail('trailing backslash');
      if (e === 'A' || e === 'z' || e === 'b' || e === 'B') {
        out += e === 'A' ? '^' : e === 'z' ? '$' : '\\' + e;
        i += 2;
      } else if (e === 'Q') {
        const stop = findSequence(cs, i + 2, '\\', 'E');
        const lit = cs.slice(i + 2, stop < 0 ? cs.length : stop);
        for (const l of lit) out += escapeJs(l);
        i = stop < 0 ? cs.length : stop + 2;
      } else if (e === 'p' || e === 'P') {
        const u = unicodeClass();
        out += (u.negated ? '[^' : '[') + u.items + ']';
      } else if (/^[dDsSwW]$/.test(e)) {
        out += perlItems(e, false);
        i += 2;
      } else {
        out += rangesToClass([[escapedChar(), -1]]);
      }
    } else if (c === '[') {
      out += bracket();
    } else if (c === '(') {
      out += '(?:';
      i++;
    } else if (c === '.') {
      // Go's `.` matches anything but "\n"; JavaScript's also refuses "\r", U+2028 and U+2029.
      out += '[^\\n]';
      i++;
    } else if (c === ')' || c === '*' || c === '?' || c === '+' || c === '|' || c === '^' || c === '$') {
      out += c;
      i++;
    } else {
      out += escapeJs(c);
      i++;
    }
  }
  return out;
}

function findColonBracket(cs: string[], from: number): number {
  for (let k = from; k + 1 < cs.length; k++) if (cs[k] === ':' && cs[k + 1] === ']') return k;
  return -1;
}

function findSequence(cs: string[], from: number, a: string, b: string): number {
  for (let k = from; k + 1 < cs.length; k++) if (cs[k] === a && cs[k + 1] === b) return k;
  return -1;
}

type Ranges = [number, number][];

const GO_SPACE: Ranges = [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]];

/** Go's POSIX classes inside brackets (ASCII only). */
const POSIX_GROUPS: Record<string, Ranges> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

function complement(ranges: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

/** Class items for ranges; a hi of -1 means a single character. */
function rangesToClass(ranges: Ranges): string {
  let out = '';
  for (const [lo, hi] of ranges) {
    out += `\\u{${lo.toString(16)}}`;
    if (hi >= 0 && hi !== lo) out += `-\\u{${hi.toString(16)}}`;
  }
  return out;
}

/** Go's general categories; its `C` is Cc|Cf|Co|Cs (JavaScript's also has unassigned Cn). */
const GO_CATEGORIES = new Set(
  'L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs Cc Cf Co Cs'.split(' '),
);

function unicodeItems(name: string): string {
  if (name === 'Any') return '\\u{0}-\\u{10ffff}';
  if (name === 'C') return '\\p{Cc}\\p{Cf}\\p{Co}\\p{Cs}';
  const item = GO_CATEGORIES.has(name) ? `\\p{${name}}` : `\\p{Script=${name}}`;
  try {
    new RegExp(`[${item}]`, 'u');
  } catch {
    throw new GoSyntaxError(`invalid character class range \\p{${name}}`);
  }
  return item;
}

/** Negation of unicodeItems' output as class items (a union, since we have no set difference). */
function negateUnicodeItems(items: string): string {
  if (items === '\\u{0}-\\u{10ffff}') throw new GoSyntaxError('\\P{Any} inside a class is not supported');
  if (items.startsWith('\\p{Cc}')) return '\\P{C}\\p{Cn}';
  return items.replace('\\p{', '\\P{');
}

function escapeJs(c: string): string {
  return '^$\\.*+?()[]{}|/-'.includes(c) ? '\\' + c : c;
}

// --- paths -----------------------------------------------------------------------------------------

/** Go's strings.TrimSpace (Unicode white space as Go defines it). */
function trimGoSpace(s: string): string {
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, '');
}

/** Go's path.Clean: collapse `//`, drop `.`, resolve `..` lexically (never above `/`). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
    } else {
      out.push(seg);
    }
  }
  const joined = (rooted ? '/' : '') + out.join('/');
  return joined === '' ? '.' : joined;
}

const UNCLEAN = /(^|\/)\.{1,2}(\/|$)|\/\/|\/$/;

/** Go's filepath.Dir. */
function goDir(p: string): string {
  const slash = p.lastIndexOf('/');
  if (slash < 0) return '.';
  if (slash === 0) return '/';
  const dir = p.slice(0, slash);
  return UNCLEAN.test(dir) ? cleanPath(dir + '/') : dir;
}

function isCleanRelative(p: string): boolean {
  return p !== '' && p !== '.' && !p.startsWith('/') && !UNCLEAN.test(p);
}

function displayPath(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') ? rel : abs;
}
