/** Byte order of UTF-8 text, the order tar entries and context walks use. */

/**
 * `a` and `b` compared by their UTF-8 bytes, without encoding them: UTF-8 sorts as code points
 * do, and UTF-16 code units sort as code points except a surrogate (part of a code point above
 * U+FFFF) against a unit from U+E000 to U+FFFF. Sorting 20,000 paths made half a million
 * Buffers the old way.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y : x) >= 0xe000) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}
