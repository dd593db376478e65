/**
 * Memory a tar stream is written into, reused once the compressor has copied the bytes out.
 *
 * A cold build writes thousands of small files. Giving each its own buffer (`readFileSync`)
 * made V8 answer every few megabytes of new outside-the-heap memory with a full collection that
 * marks the whole live heap (a large context's file lists): on the 20,000-file benchmark, 41
 * collections and about 2 s of CPU. Handing each file, its header and its padding down the
 * stream as separate chunks cost as much again in per-chunk stream work. A `SlabWriter` instead
 * writes headers, file contents (read straight into place) and padding into 1 MiB slabs and hands
 * them on in pieces of at least 256 KiB (docs/decisions.md, "Writing tar streams into recycled
 * slabs").
 *
 * Ownership is counted in bytes: a slab is reused only after every byte handed out from it has
 * been released by `releaseChunk`, which the block compressor calls once it has copied a chunk.
 * A chunk that never reaches it (an error, an uncompressed layer, a stream that copied it on the
 * way) simply keeps its slab out of reuse, and the garbage collector takes it as before.
 */
import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';

const SLAB_SIZE = 1024 * 1024;
/** Free slabs kept for the next stream; beyond this they are left to the garbage collector. */
const MAX_FREE_SLABS = 8;
/** Bytes gathered before a piece is handed on. */
const PIECE_SIZE = 256 * 1024;

/** The largest file `readFile` takes (one byte of the slab is kept to notice a file that grew). */
export const SMALL_FILE_LIMIT = SLAB_SIZE - 1;

interface Slab {
  buffer: Buffer;
  /** Bytes handed out and not yet released. */
  pending: number;
  /** No more bytes will be handed out from it. */
  retired: boolean;
}

const slabOf = new WeakMap<ArrayBufferLike, Slab>();
const free: Slab[] = [];
let idleTimer: NodeJS.Timeout | undefined;

/** Writes one byte stream into slabs; `take` hands out what is written, in order. */
export class SlabWriter {
  private slab: Slab | undefined;
  /** End of the bytes written into the current slab. */
  private used = 0;
  /** Start of the bytes written and not yet handed out. */
  private mark = 0;
  private readonly pieces: Buffer[] = [];

  /** Copy `bytes` in (across slabs if need be). */
  write(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) {
      const slab = this.room(Math.min(bytes.length - at, SLAB_SIZE));
      const n = Math.min(bytes.length - at, SLAB_SIZE - this.used);
      slab.buffer.set(bytes.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
    }
  }

  /** `n` zero bytes (tar padding). */
  zeros(n: number): void {
    for (let left = n; left > 0; ) {
      const slab = this.room(Math.min(left, SLAB_SIZE));
      const k = Math.min(left, SLAB_SIZE - this.used);
      slab.buffer.fill(0, this.used, this.used + k);
      this.used += k;
      left -= k;
    }
  }

  /**
   * Read the whole of `path`, expected to hold `size` ≤ SMALL_FILE_LIMIT bytes, into place.
   * `bytes` is what is actually there: one byte more than `size` if the file has grown, fewer if it
   * shrank; only an exact read is kept (`keep`), anything else is for the caller to refuse.
   * `after` is the file's stat taken on the open file after reading (cheaper than a second lookup
   * by path).
   */
  readFile(path: string, size: number): { bytes: Buffer; after: Stats; keep: () => void } {
    const want = size + 1;
    const slab = this.room(want);
    const start = this.used;
    const fd = openSync(path, 'r');
    let n = 0;
    let after: Stats;
    try {
      for (;;) {
        const got = readSync(fd, slab.buffer, start + n, want - n, n);
        if (got === 0) break;
        n += got;
        if (n === want) break;
      }
      after = fstatSync(fd);
    } finally {
      closeSync(fd);
    }
    return {
      bytes: slab.buffer.subarray(start, start + n),
      after,
      keep: () => {
        if (n === size && this.slab === slab && this.used === start) this.used += size;
      },
    };
  }

  /** Pieces ready to hand on: everything written once at least PIECE_SIZE is, or all of it when `all`. */
  take(all = false): Buffer[] {
    if (this.slab && (all ? this.used > this.mark : this.used - this.mark >= PIECE_SIZE)) this.handOut();
    return this.pieces.splice(0);
  }

  /** Done writing (or failed): the slab may be reused once everything handed out is released. */
  close(): void {
    if (!this.slab) return;
    this.slab.retired = true;
    if (this.slab.pending === 0) reuse(this.slab);
    this.slab = undefined;
  }

  /** The current slab with `n` contiguous bytes free (n ≤ SLAB_SIZE); the full one's rest is handed out first. */
  private room(n: number): Slab {
    if (this.slab && SLAB_SIZE - this.used >= n) return this.slab;
    if (this.slab) {
      if (this.used > this.mark) this.handOut();
      this.slab.retired = true;
      if (this.slab.pending === 0) reuse(this.slab);
    }
    this.slab = free.pop() ?? newSlab();
    this.slab.retired = false;
    this.used = 0;
    this.mark = 0;
    releaseFreeSlabsWhenIdle();
    return this.slab;
  }

  private handOut(): void {
    const slab = this.slab!;
    this.pieces.push(slab.buffer.subarray(this.mark, this.used));
    slab.pending += this.used - this.mark;
    this.mark = this.used;
  }
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

function newSlab(): Slab {
  const slab: Slab = { buffer: Buffer.allocUnsafeSlow(SLAB_SIZE), pending: 0, retired: false };
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
    }, 1000);
    idleTimer.unref();
  }
}
