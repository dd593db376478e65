/**
 * A small pool of worker threads that compress blocks: raw deflate with the block's CRC-32 (for
 * gzip), or one zstd frame. Compression runs entirely off the main thread, which keeps the main
 * thread free for tar writing and hashing and keeps the per-block allocations out of its garbage
 * collector.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { COLLECT_EVERY_BYTES } from './collect-garbage.ts';
import { deflateBlock, incompressibleRuns } from './incompressible.ts';
import { zstdModulePath } from './zstd.ts';

// The worker is plain JavaScript evaluated from a string, so it runs the same under tsx (tests)
// and from dist/ (the CLI), with no file to locate. The deflate functions come in as source text.
const WORKER_SOURCE = `
const incompressibleRuns = ${incompressibleRuns.toString()};
const deflateBlock = ${deflateBlock.toString()};
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const fs = require('node:fs');
const crypto = require('node:crypto');
const v8 = require('node:v8');
let zstd;
// Dead blocks and zlib's output pieces pile up off-heap long before V8 collects them (see
// collect-garbage.ts): ask for a collection every 16 MiB of input. A worker's heap is tiny, so
// each costs about a millisecond.
let collect = globalThis.gc;
if (typeof collect !== 'function') {
  try {
    v8.setFlagsFromString('--expose-gc');
    collect = require('node:vm').runInNewContext('gc');
  } catch {
    collect = undefined;
  }
}
let sinceCollect = 0;
parentPort.on('message', (job) => {
  try {
    if (job.kind === 'hash-file') {
      const hash = crypto.createHash('sha256').update(fs.readFileSync(job.path)).digest('hex');
      parentPort.postMessage({ id: job.id, digest: 'sha256:' + hash });
      return;
    }
    const input = Buffer.from(job.block, 0, job.length);
    let out;
    let crc = 0;
    if (job.kind === 'zstd') {
      zstd ??= require(workerData.zstdPath);
      out = zstd.compress(input, { compressionLevel: job.level });
    } else {
      out = deflateBlock(zlib, incompressibleRuns, input, job.dictionary ? Buffer.from(job.dictionary) : undefined, job.level, job.last);
      crc = zlib.crc32(input);
    }
    // The compressed bytes go back in memory that circulates between the threads (job.out, a
    // buffer the main thread has written out), so neither thread leaves a megabyte of garbage per
    // block. The capacity covers the worst case, so a new buffer is needed only to start with.
    const target = job.out && job.out.byteLength >= out.length ? job.out : new ArrayBuffer(Math.max(out.length, job.outCapacity));
    new Uint8Array(target, 0, out.length).set(out);
    parentPort.postMessage({ id: job.id, out: target, outLength: out.length, crc, block: job.block }, [target, job.block]);
    sinceCollect += job.length;
    if (sinceCollect >= workerData.collectEvery && typeof collect === 'function') {
      sinceCollect = 0;
      collect();
    }
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: (err && err.code ? err.code + ': ' : '') + String(err && err.message || err) });
  }
});
`;

interface Job {
  resolve: (r: { out: Buffer; crc: number; digest?: string }) => void;
  reject: (e: Error) => void;
}

/** Spare blocks kept per size: enough for every block in flight of a few layers at once. */
const MAX_SPARE_BLOCKS = 32;

class CompressionPool {
  private readonly workers: Worker[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private next = 0;
  private active = 0;
  private readonly spare = new Map<number, ArrayBuffer[]>();
  /** Output buffers written out and free to carry a block's result again, by capacity. */
  private readonly spareOutputs = new Map<number, ArrayBuffer[]>();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly size: number) {}

  private worker(): Worker {
    if (this.workers.length < this.size) {
      // An eval'd worker resolves require() from the current folder, not from lading: pass the
      // optional zstd module's path explicitly.
      // No inherited execArgv: a parent started with --input-type=module would make the CommonJS
      // source an ES module (no require), and loaders like tsx are not needed here.
      const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { zstdPath: zstdModulePath(), collectEvery: COLLECT_EVERY_BYTES } });
      w.on('message', (msg: { id: number; out?: ArrayBuffer; outLength?: number; crc?: number; block?: ArrayBuffer; digest?: string; error?: string }) => {
        if (msg.block) this.recycle(msg.block);
        const job = this.jobs.get(msg.id);
        if (!job) return;
        this.jobs.delete(msg.id);
        if (--this.active === 0) {
          for (const x of this.workers) x.unref();
          this.releaseSpareBlocksWhenIdle();
        }
        if (msg.error !== undefined) job.reject(Object.assign(new Error(msg.error), /^E[A-Z]+:/.test(msg.error) ? { code: msg.error.slice(0, msg.error.indexOf(':')) } : {}));
        else if (msg.digest !== undefined) job.resolve({ out: Buffer.alloc(0), crc: 0, digest: msg.digest });
        else {
          compressedOutputs.set(msg.out!, msg.outLength!);
          job.resolve({ out: Buffer.from(msg.out!, 0, msg.outLength!), crc: msg.crc! });
        }
      });
      w.on('error', (err) => {
        for (const [id, job] of this.jobs) {
          this.jobs.delete(id);
          job.reject(err);
        }
      });
      w.unref();
      this.workers.push(w);
      return w;
    }
    const w = this.workers[this.next % this.workers.length]!;
    this.next++;
    return w;
  }

  /**
   * A block-sized buffer to fill and hand to deflate() or zstd(), which take it over. Buffers come
   * back from the workers and are reused: a 1 GB layer then cycles through a few dozen megabytes
   * instead of leaving a gigabyte of blocks for two garbage collectors to find.
   */
  block(size: number): Buffer {
    let list = this.spare.get(size);
    if (!list) this.spare.set(size, (list = []));
    const spare = list.pop();
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(size);
  }

  // A long-lived process (a build script, a server) should not keep a build's blocks after it.
  private releaseSpareBlocksWhenIdle(): void {
    if (this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.active === 0) for (const list of [...this.spare.values(), ...this.spareOutputs.values()]) list.length = 0;
    }, 1000);
    this.idleTimer.unref();
  }

  /** A compressed result (`out` of deflate/zstd) has been written out: its memory may carry another. */
  recycleOutput(chunk: Uint8Array): void {
    const buffer = chunk.buffer as ArrayBuffer;
    // Only the whole result: a piece of it may mean other pieces are still on their way.
    if (chunk.byteOffset !== 0 || compressedOutputs.get(buffer) !== chunk.byteLength) return;
    compressedOutputs.delete(buffer);
    const list = this.spareOutputs.get(buffer.byteLength);
    if (list && list.length < MAX_SPARE_BLOCKS) list.push(buffer);
  }

  private recycle(buffer: ArrayBuffer): void {
    // Only sizes block() handed out come back to the lists (a caller's own buffer may be any size).
    const list = this.spare.get(buffer.byteLength);
    if (list && list.length < MAX_SPARE_BLOCKS) list.push(buffer);
  }

  /** Deflate the first `length` bytes of `block` (raw, no header) with an optional dictionary; returns the bytes and their CRC-32. */
  deflate(block: Buffer, length: number, dictionary: Uint8Array | undefined, level: number, last: boolean): Promise<{ out: Buffer; crc: number }> {
    return this.submit('deflate', block, length, dictionary, level, last);
  }

  /** Compress the first `length` bytes of `block` as one zstd frame. */
  async zstd(block: Buffer, length: number, level: number): Promise<Buffer> {
    return (await this.submit('zstd', block, length, undefined, level, true)).out;
  }

  /**
   * The sha256 of a (small) file, read and hashed on a worker: a cold context's hashing then uses
   * every core instead of leaving the compression workers idle until the first layer is written.
   */
  hashFile(file: string): Promise<string> {
    const id = this.nextId++;
    return new Promise<{ digest?: string }>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      const w = this.worker();
      if (this.active++ === 0) for (const x of this.workers) x.ref();
      w.postMessage({ id, kind: 'hash-file', path: file });
    }).then((r) => r.digest!);
  }

  private submit(kind: 'deflate' | 'zstd', block: Buffer, length: number, dictionary: Uint8Array | undefined, level: number, last: boolean): Promise<{ out: Buffer; crc: number }> {
    const id = this.nextId++;
    // The block's memory moves to the worker (no copy); the dictionary is small and copied.
    // (Buffer#slice is a view, not a copy: copy through the Uint8Array constructor.)
    const own = block.byteOffset === 0 && block.byteLength === block.buffer.byteLength ? block : new Uint8Array(block.subarray(0, length));
    const dict = dictionary ? new Uint8Array(dictionary).buffer : undefined;
    // Room for the worst case: a block that does not compress, plus its stored-block headers.
    const outCapacity = own.byteLength + Math.ceil(own.byteLength / 64) + 1024;
    const out = this.spareOutputs.get(outCapacity)?.pop();
    if (!this.spareOutputs.has(outCapacity)) this.spareOutputs.set(outCapacity, []);
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { resolve, reject });
      const w = this.worker();
      // Workers are unreferenced while idle so they never keep the process alive, and
      // referenced while a block is in flight so the process waits for it.
      if (this.active++ === 0) for (const x of this.workers) x.ref();
      const transfer = out ? [own.buffer as ArrayBuffer, out] : [own.buffer as ArrayBuffer];
      w.postMessage({ id, kind, block: own.buffer, length, dictionary: dict, level, last, out, outCapacity }, transfer);
    });
  }
}

/** Result buffers made by the workers and the length of the result each holds, until recycled (or collected). */
const compressedOutputs = new WeakMap<ArrayBuffer, number>();

let pool: CompressionPool | undefined;

/** The process-wide pool, one worker per core (created on first use, idle workers never keep the process alive). */
export function compressionPool(): CompressionPool {
  pool ??= new CompressionPool(Math.max(1, availableParallelism()));
  return pool;
}

/**
 * `chunk`, a piece of a compressed layer, has been written where it goes: if its memory came from
 * a worker, it carries another block's result next. Only the writer that finished with it may call
 * this; anything else must leave it alone.
 */
export function recycleCompressedChunk(chunk: Uint8Array): void {
  pool?.recycleOutput(chunk);
}

/** CRC-32 of the concatenation of A (crc1) and B (crc2, of length len2), as zlib's crc32_combine. */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (len2 <= 0) return crc1 >>> 0;
  const gf2Times = (mat: Uint32Array, vec: number): number => {
    let sum = 0;
    let i = 0;
    let v = vec >>> 0;
    while (v !== 0) {
      if (v & 1) sum ^= mat[i]!;
      v >>>= 1;
      i++;
    }
    return sum >>> 0;
  };
  const gf2Square = (square: Uint32Array, mat: Uint32Array): void => {
    for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
  };
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // the CRC-32 polynomial, reflected
  let row = 1;
  for (let n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let c1 = crc1 >>> 0;
  let len = len2;
  do {
    gf2Square(even, odd);
    if (len & 1) c1 = gf2Times(even, c1);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len & 1) c1 = gf2Times(odd, c1);
    len = Math.floor(len / 2);
  } while (len !== 0);
  return (c1 ^ crc2) >>> 0;
}
