/** The allocation-free UTF-8 order agrees with comparing the encoded bytes, for any text. */
import test from 'ava';
import fc from 'fast-check';
import { compareUtf8 } from '../../src/utf8-order.ts';
import { compareEntryPaths } from '../../src/layer/entry.ts';

const sign = (n: number): number => Math.sign(n);
const bytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// Characters from every range where UTF-16 and UTF-8 orders could disagree: ASCII, the BMP below
// and above the surrogates, and astral characters (surrogate pairs).
const char = fc.constantFrom('a', 'b', '/', '-', '.', 'é', '中', '\ud7ff', '\ue000', '\uffff', '😀', '𝄞', '\u{10ffff}');
const text = fc.array(char, { maxLength: 6 }).map((cs) => cs.join(''));

test('compareUtf8 has the sign of a byte comparison of the UTF-8 encodings', (t) => {
  fc.assert(fc.property(text, text, (a, b) => sign(compareUtf8(a, b)) === sign(bytes(a, b))), { numRuns: 20_000 });
  t.true(compareUtf8('\uffff', '😀') < 0, 'U+FFFF before U+1F600 although its UTF-16 unit is larger');
  t.true(compareUtf8('\ue000', '\ud83d\ude00') < 0);
  t.is(compareUtf8('same', 'same'), 0);
});

test('entry paths: component by component, the opaque marker first in its folder', (t) => {
  const paths = ['a-b', 'a/b', 'a', 'a/.wh..wh..opq', 'a/😀', 'a/\uffff', 'b'];
  const sorted = paths.slice().sort(compareEntryPaths);
  t.deepEqual(sorted, ['a', 'a/.wh..wh..opq', 'a/b', 'a/\uffff', 'a/😀', 'a-b', 'b']);
});
