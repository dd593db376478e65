/**
 * A garbage collection on request, for the streaming loops that churn through off-heap buffers.
 *
 * Compressing a layer allocates a read chunk, a compressed block and zlib's output pieces for
 * every megabyte, each a tiny object on V8's heap holding memory outside it. V8 collects them
 * late (it lets about 64 MB of dead external memory pile up per thread before it looks), so a
 * 1 GB layer peaked at 230 MB of RSS, nearly all of it garbage (and freed late, it also spreads
 * over more of each thread's malloc arena). Asking for a collection every 16 MiB keeps that near
 * 140 MB; the cost is lost in the noise of a 15 s compression (docs/decisions.md has the figures).
 *
 * `gc` exists only behind --expose-gc. The flag can be set on a running process; the function
 * is then fetched from a fresh context. Where that fails, collections are simply not requested.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Bytes of blocks between two requested collections. */
export const COLLECT_EVERY_BYTES = 16 * 1024 * 1024;
/** Live heap above which no collection is requested. */
const COLLECT_BELOW_HEAP_BYTES = 24 * 1024 * 1024;

type Collect = () => void;

let collect: Collect | null | undefined;

/**
 * Collect, unless the live heap is large. A full collection costs in proportion to what is live:
 * a few milliseconds for a layer writer (about 10 MB), 30–80 ms once a large context's file list
 * is on the heap — and a thread with that many objects is collected often enough anyway.
 */
export function collectGarbage(): void {
  if (v8.getHeapStatistics().used_heap_size > COLLECT_BELOW_HEAP_BYTES) return;
  if (collect === undefined) collect = findCollector();
  collect?.();
}

function findCollector(): Collect | null {
  const exposed = (globalThis as { gc?: Collect }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn: unknown = vm.runInNewContext('gc');
    return typeof fn === 'function' ? (fn as Collect) : null;
  } catch {
    return null;
  }
}
