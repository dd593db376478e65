/**
 * The library's cancellation contract: once the caller's AbortSignal fires, the call fails with
 * INTERRUPTED, whichever stream, request or timer noticed it first (a stream pipeline throws a
 * bare AbortError, node-fetch its own). Callers then need to check one code, and the CLI exits
 * 130 instead of reporting an internal error.
 */
import { ERROR_CODES, LadingError, isLadingError } from '../errors.ts';

export async function cancellable<T>(signal: AbortSignal | undefined, what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (signal?.aborted && !(isLadingError(err) && err.code === ERROR_CODES.INTERRUPTED)) {
      throw new LadingError(ERROR_CODES.INTERRUPTED, `the ${what} was cancelled`, { cause: err });
    }
    throw err;
  }
}
