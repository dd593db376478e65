/**
 * zstd for layers, through the zstd-napi package (Node 20 has no zstd of its own). The module is
 * native and optional: loaded on first use, with a clear error where it cannot load.
 */
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';

const require = createRequire(import.meta.url);

interface ZstdModule {
  DecompressStream: new () => Transform;
  compress(data: Uint8Array, parameters?: { compressionLevel?: number }): Buffer;
}

let loaded: ZstdModule | undefined;
let failure: unknown;

/** The resolved path of the zstd module (for worker threads), or '' when it is not installed. */
export function zstdModulePath(): string {
  try {
    return require.resolve('zstd-napi');
  } catch {
    return '';
  }
}

export function loadZstd(): ZstdModule {
  if (loaded) return loaded;
  if (failure === undefined) {
    try {
      loaded = require('zstd-napi') as ZstdModule;
      return loaded;
    } catch (err) {
      failure = err;
    }
  }
  throw new LadingError(ERROR_CODES.USAGE, 'zstd is not available: the zstd-napi module could not be loaded', {
    cause: failure,
    hint: 'reinstall lading with its dependencies (npm ci builds zstd-napi), or use gzip',
  });
}

/** A stream turning zstd (one or several frames) back into the bytes they hold. */
export function zstdDecompressStream(): Transform {
  return new (loadZstd().DecompressStream)();
}
