/**
 * Wildcards in COPY/ADD sources: Go's filepath.Match, one path component at a time (`*` and `?`
 * never cross `/`, `[...]` classes with `^` or `!` negation, `\` escapes).
 */
import { ERROR_CODES, LadingError } from '../errors.ts';

export function hasWildcard(text: string): boolean {
  return /[*?[\\]/.test(text);
}

export function compileComponent(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      i++;
      if (i >= pattern.length) throw badPattern(pattern);
      re += escapeRe(pattern[i]!);
    } else if (ch === '[') {
      const end = classEnd(pattern, i);
      if (end < 0) throw badPattern(pattern);
      let body = pattern.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('^') || body.startsWith('!')) {
        negate = true;
        body = body.slice(1);
      }
      if (body === '') throw badPattern(pattern);
      const parts = body.replace(/\\(.)/g, '$1').split('');
      re += `[${negate ? '^/' : ''}${parts.map((c) => (c === '-' ? '-' : escapeClass(c))).join('')}]`;
      i = end;
    } else re += escapeRe(ch);
  }
  try {
    return new RegExp(`${re}$`, 'u');
  } catch {
    throw badPattern(pattern);
  }
}

function classEnd(pattern: string, start: number): number {
  for (let j = start + 1; j < pattern.length; j++) {
    if (pattern[j] === '\\') j++;
    else if (pattern[j] === ']' && j > start + 1) return j;
  }
  return -1;
}

function escapeRe(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function escapeClass(ch: string): string {
  return ch.replace(/[\]\\^]/g, '\\$&');
}

function badPattern(pattern: string): LadingError {
  return new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `malformed wildcard pattern "${pattern}"`, {
    hint: 'close every [ with ], and end no pattern with a lone backslash',
  });
}
