/** The local cache as the library exposes it: list, prune and verify the store. */
import { ERROR_CODES, LadingError } from '../errors.ts';
import { listCache, parseAge, parseSize, pruneCache, verifyStore, type CacheListing, type PruneReport, type VerifyReport } from '../store/maintenance.ts';
import { defaultCacheDir } from './build.ts';

export type { CacheListing, PruneReport, VerifyReport };

export interface CacheDirOption {
  /** The store folder (default as for build). */
  cacheDir?: string;
}

/** Every cache record and how much the store holds (`lading cache ls`). */
export function cacheList(options: CacheDirOption = {}): Promise<CacheListing> {
  return listCache(options.cacheDir ?? defaultCacheDir());
}

export interface PruneOptions extends CacheDirOption {
  /** Keep at most this much, e.g. `10GB` (least recently used goes first). */
  keepStorage?: string | number;
  /** Remove what was not used for this long, e.g. `24h`, `7d`. */
  olderThan?: string | number;
}

/**
 * Remove cache records and blobs (`lading cache prune`): least recently used first down to
 * `keepStorage`, or unused for `olderThan`; with neither, everything no build is using.
 */
export async function cachePrune(options: PruneOptions = {}): Promise<PruneReport> {
  const keepBytes = typeof options.keepStorage === 'string' ? parseSize(options.keepStorage) : options.keepStorage;
  if (options.keepStorage !== undefined && keepBytes === undefined) {
    throw new LadingError(ERROR_CODES.USAGE, `invalid size "${String(options.keepStorage)}"`, { hint: 'write a size such as 500MB or 10GB' });
  }
  const olderThanMs = typeof options.olderThan === 'string' ? parseAge(options.olderThan) : options.olderThan;
  if (options.olderThan !== undefined && olderThanMs === undefined) {
    throw new LadingError(ERROR_CODES.USAGE, `invalid age "${String(options.olderThan)}"`, { hint: 'write an age such as 30m, 24h or 7d' });
  }
  if (keepBytes === undefined && olderThanMs === undefined) {
    // Like `docker builder prune` without filters: drop everything not in use right now.
    return pruneCache(options.cacheDir ?? defaultCacheDir(), { olderThanMs: 0 });
  }
  return pruneCache(options.cacheDir ?? defaultCacheDir(), { keepBytes, olderThanMs });
}

/** Check every blob against its digest and every record against its blob; `repair` removes what is broken. */
export function cacheVerify(options: CacheDirOption & { repair?: boolean } = {}): Promise<VerifyReport> {
  return verifyStore(options.cacheDir ?? defaultCacheDir(), { repair: options.repair });
}
