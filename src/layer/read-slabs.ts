/**
 * Memory to read small files into, reused once the compressor has copied the bytes out.
 *
 * A cold build reads thousands of small files. `readFileSync` gives each its own ArrayBuffer, and
 * V8 answers every few megabytes of new outside-the-heap memory with a full collection that marks
 * the whole live heap (a large context's file lists): on the 20,000-file benchmark that was 41
 * collections and about 2 s of CPU across the main thread and V8's helpers. Reading into shared
 * 1 MiB slabs and recycling them removes nearly all of it (docs/decisions.md, "Reading small
 * files into recycled slabs").
 *
 * Ownership is counted in bytes: a slab is reused only after every byte handed out from it has
 * been released by `releaseChunk`, which the block compressor calls once it has copied a chunk.
 * A chunk that never reaches it (an error, an uncompressed layer, a stream that copied it on the
 * way) simply keeps its slab out of reuse, and the garbage collector takes it as before.
 */
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';

const SLAB_SIZE = 1024 * 1024;
/** Free slabs kept for the next file; beyond this they are left to the garbage collector. */
const MAX_FREE_SLABS = 8;

/** The largest file `readSmallFile` takes (one byte of each slab is kept to notice a file that grew). */
export const SMALL_FILE_LIMIT = SLAB_SIZE - 1;

interface Slab {
  buffer: Buffer;
  used: number;
  /** Bytes handed out and not yet released. */
  pending: number;
  /** No more bytes will be handed out from it. */
  retired: boolean;
}

const slabOf = new WeakMap<ArrayBufferLike, Slab>();
const free: Slab[] = [];
let current: Slab | undefined;
let idleTimer: NodeJS.Timeout | undefined;

/**
 * Read the whole of `path` (expected to hold `size` ≤ SMALL_FILE_LIMIT bytes) into slab memory.
 * Returns the bytes actually there, one more than `size` if the file has grown, so the caller can
 * tell a changed file from an unchanged one exactly as with `readFileSync`; and the file's stat
 * taken on the open file after reading (cheaper than a second lookup by path).
 */
export function readSmallFile(path: string, size: number): { bytes: Buffer; after: Stats } {
  const want = size + 1;
  const slab = slabWithRoom(want);
  const fd = openSync(path, 'r');
  let n = 0;
  let after: Stats;
  try {
    for (;;) {
      const got = readSync(fd, slab.buffer, slab.used + n, want - n, n);
      if (got === 0) break;
      n += got;
      if (n === want) break;
    }
    after = fstatSync(fd);
  } finally {
    closeSync(fd);
  }
  const bytes = slab.buffer.subarray(slab.used, slab.used + n);
  slab.used += n;
  slab.pending += n;
  return { bytes, after };
}

/** The block compressor has copied `chunk`: its bytes may be overwritten once their whole slab is released. */
export function releaseChunk(chunk: Uint8Array): void {
  const slab = slabOf.get(chunk.buffer);
  if (!slab) return;
  slab.pending -= chunk.byteLength;
  // More released than handed out means a chunk came through twice: never reuse that memory.
  if (slab.pending < 0) slabOf.delete(chunk.buffer);
  if (slab.retired && slab.pending === 0) reuse(slab);
}

function slabWithRoom(bytes: number): Slab {
  if (current && SLAB_SIZE - current.used >= bytes) return current;
  if (current) {
    current.retired = true;
    if (current.pending === 0) reuse(current);
  }
  current = free.pop() ?? newSlab();
  current.retired = false;
  current.used = 0;
  releaseFreeSlabsWhenIdle();
  return current;
}

function newSlab(): Slab {
  const slab: Slab = { buffer: Buffer.allocUnsafeSlow(SLAB_SIZE), used: 0, pending: 0, retired: false };
  slabOf.set(slab.buffer.buffer, slab);
  return slab;
}

function reuse(slab: Slab): void {
  if (free.length < MAX_FREE_SLABS && slabOf.has(slab.buffer.buffer) && !free.includes(slab)) free.push(slab);
}

// A long-lived process (a build script, a server) should not keep a build's slabs after it.
function releaseFreeSlabsWhenIdle(): void {
  if (idleTimer) idleTimer.refresh();
  else {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      free.length = 0;
      current = undefined;
    }, 1000);
    idleTimer.unref();
  }
}
