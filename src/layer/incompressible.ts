/**
 * Finding the stretches of a block that deflate cannot shrink, so they are stored instead of
 * searched. Already-compressed files (images, archives, fonts, wasm) are a large share of real
 * contexts, and zlib at level 6 still searches them at ~43 MB/s a core (text: ~17 MB/s) for
 * output no smaller than the input: an eighth of the compression time of the benchmark context.
 *
 * Both functions run inside the compression workers, which receive their source text
 * (compression-pool.ts), so they use nothing from outside their own bodies.
 */

/**
 * `[start, end, start, end, ...]` offsets into `data` of runs of whole 4 KiB segments that look
 * incompressible: their bytes are spread almost evenly over all 256 values (Rényi entropy of order
 * two at least 7.88 bits per byte, so Huffman coding could save at most 1.5%), and no four-byte
 * sequence repeats within them (so there is nothing for LZ77 either), widened by whole 512-byte
 * records of even bytes on either side. Runs shorter than `minRun` bytes are dropped: splitting
 * the deflate stream costs more than storing a few kilobytes saves.
 */
export function incompressibleRuns(data: Uint8Array, minRun: number): number[] {
  // Small enough to catch a 10 KiB compressed file inside a tar stream.
  const segment = 4096;
  // sum(count²) over n = 4096 bytes is about n²·Σp² + n: the bound is Σp² ≤ 2^-7.88 (a uniform
  // source averages 69,632, with a standard deviation of ~360).
  const maxSumOfSquares = 75_334;
  const counts = new Int32Array(256);
  const counts4 = new Int32Array(1024);
  // Positions (+1) of recent four-byte sequences, by hash, to look for repeats within the run.
  const recent = new Int32Array(1 << 14);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const runs: number[] = [];
  let runStart = -1;
  for (let start = 0; start + segment <= data.length; start += segment) {
    const end = start + segment;
    counts.fill(0);
    // Most segments are text: a sample of one byte in eight rejects them (a uniform sample of 512
    // averages 1,536; text scores in the tens of thousands).
    for (let i = start; i < end; i += 8) counts[data[i]!]!++;
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += counts[v]! * counts[v]!;
    let flat = sum <= 3072;
    if (flat) {
      // Four tables, so consecutive increments do not wait on each other.
      counts4.fill(0);
      for (let i = start; i < end; i += 4) {
        counts4[data[i]!]!++;
        counts4[256 + data[i + 1]!]!++;
        counts4[512 + data[i + 2]!]!++;
        counts4[768 + data[i + 3]!]!++;
      }
      sum = 0;
      for (let v = 0; v < 256; v++) {
        const n = counts4[v]! + counts4[v + 256]! + counts4[v + 512]! + counts4[v + 768]!;
        sum += n * n;
      }
      flat = sum <= maxSumOfSquares;
    }
    if (flat) {
      if (runStart < 0) recent.fill(0);
      // Every other position is looked up, and two in eight remembered (one odd, one even): a
      // repeat at any distance inside the run meets a remembered position within eight bytes.
      let repeats = 0;
      for (let i = start; i + 5 <= data.length && i + 4 <= end; i += 2) {
        const word = view.getUint32(i, true);
        const h = Math.imul(word, 0x9e3779b1) >>> 18;
        const seen = recent[h]! - 1;
        if (seen >= 0 && view.getUint32(seen, true) === word && ++repeats > 16) break;
        if ((i & 7) === 0) {
          recent[h] = i + 1;
          recent[Math.imul(view.getUint32(i + 1, true), 0x9e3779b1) >>> 18] = i + 2;
        }
      }
      flat = repeats <= 16;
    }
    if (flat && runStart < 0) runStart = start;
    if (!flat && runStart >= 0) {
      addRun(runStart, start);
      runStart = -1;
    }
  }
  if (runStart >= 0) addRun(runStart, data.length - (data.length % segment));
  return runs;

  // Tar records are 512 bytes, so a compressed file starts and ends on a 512-byte boundary, most
  // often inside a segment that also holds text: extend the run over such records on each side.
  function addRun(start: number, end: number): void {
    // Only into the neighbouring segments, which failed a test the whole run passed.
    const floor = Math.max(runs.length > 0 ? runs[runs.length - 1]! : 0, start - segment);
    const ceiling = Math.min(data.length, end + segment);
    while (start - 512 >= floor && flatRecord(start - 512)) start -= 512;
    while (end + 512 <= ceiling && flatRecord(end)) end += 512;
    if (end - start >= minRun) runs.push(start, end);
  }

  // One 512-byte record, all bytes counted: uniform bytes average 1,536 with a deviation of ~45.
  function flatRecord(at: number): boolean {
    counts.fill(0);
    for (let i = at; i < at + 512; i++) counts[data[i]!]!++;
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += counts[v]! * counts[v]!;
    return sum <= 1625;
  }
}

/**
 * Raw deflate of `input` (no header), as one block of the parallel gzip stream: byte-aligned at the
 * end (a sync flush) unless `last`, then final. `dictionary` is the 32 KiB before `input`. Runs
 * that `incompressibleRuns` finds become stored blocks; each other stretch is deflated at `level`
 * with the 32 KiB before it as its dictionary, so a stretch loses no match a single stream would
 * have found across the stored run before it.
 */
export function deflateBlock(
  zlib: typeof import('node:zlib'),
  runsOf: (data: Uint8Array, minRun: number) => number[],
  input: Buffer,
  dictionary: Buffer | undefined,
  level: number,
  last: boolean,
): Buffer {
  const window = 32 * 1024;
  const runs = runsOf(input, 8 * 1024);
  // [start, end, stored] for each stretch in order; an empty input is one empty deflated stretch.
  const stretches: [number, number, boolean][] = [];
  let from = 0;
  for (let k = 0; k < runs.length; k += 2) {
    if (runs[k]! > from) stretches.push([from, runs[k]!, false]);
    stretches.push([runs[k]!, runs[k + 1]!, true]);
    from = runs[k + 1]!;
  }
  if (from < input.length || stretches.length === 0) stretches.push([from, input.length, false]);
  const pieces: Buffer[] = [];
  for (let s = 0; s < stretches.length; s++) {
    const [start, end, stored] = stretches[s]!;
    const final = last && s === stretches.length - 1;
    if (stored) {
      // Stored blocks: a header byte (BFINAL, type 00; the stream is byte-aligned here), LEN, NLEN, the bytes.
      for (let at = start; at < end; ) {
        const n = Math.min(65_535, end - at);
        const header = Buffer.alloc(5);
        header[0] = final && at + n === end ? 1 : 0;
        header.writeUInt16LE(n, 1);
        header.writeUInt16LE(~n & 0xffff, 3);
        pieces.push(header, input.subarray(at, at + n));
        at += n;
      }
      continue;
    }
    let dict: Buffer | undefined;
    if (start >= window) dict = input.subarray(start - window, start);
    else if (start > 0 || dictionary) dict = Buffer.concat([dictionary ?? Buffer.alloc(0), input.subarray(0, start)]).subarray(-window);
    const options: import('node:zlib').ZlibOptions = { level, finishFlush: final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH };
    if (dict && dict.length > 0) options.dictionary = dict;
    pieces.push(zlib.deflateRawSync(input.subarray(start, end), options));
  }
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
}
