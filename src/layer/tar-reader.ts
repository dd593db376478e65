/**
 * Safe, streaming tar reading on tar-stream: one entry at a time, its body as a stream, names
 * checked before anyone sees them. Nothing here touches the file system; `run/apply-layer.ts`
 * decides what an entry means on disk (whiteouts, links, ownership).
 */
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ERROR_CODES, LadingError, throwIfAborted } from '../errors.ts';
import type { LayerEntryType } from './entry.ts';

export interface TarEntry {
  /** The name as the archive stores it (after PAX and GNU long names), for messages. */
  name: string;
  /** Relative to the root, `/`-separated, no `.`, `..` or empty components; '' is the root. */
  path: string;
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content (regular files only; 0 for everything else). */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A symlink's target verbatim, or a hard link's target as a cleaned relative path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** From SCHILY.xattr.* PAX records. */
  xattrs?: Record<string, string>;
}

export interface TarReadOptions {
  signal?: AbortSignal;
}

/** Called once per entry, in archive order. `body` holds a regular file's bytes; it is drained afterwards whatever the handler read. */
export type TarEntryHandler = (entry: TarEntry, body: Readable) => Promise<void>;

/**
 * Turn an archive name into a path relative to the root. Leading `/` and `./` are dropped (tar's
 * own convention); a name that climbs above the root with `..` is refused, never clamped, because
 * a clamped name would silently write somewhere its author did not mean.
 */
export function tarEntryPath(name: string, what = 'tar entry'): string {
  if (name.includes('\0')) throw tarError(`${what} ${JSON.stringify(name)} contains a NUL byte`);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw tarError(`${what} ${JSON.stringify(name)} points outside the root`);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

function tarError(message: string, cause?: unknown): LadingError {
  return new LadingError(ERROR_CODES.TAR, message, {
    cause,
    hint: 'the layer is malformed or hostile; rebuild it or choose another base image',
  });
}

const TYPES: Record<string, TarEntry['type']> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'directory',
  'character-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

function parseId(pax: Record<string, string>, key: string, fallback: number): number {
  const raw = pax[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw tarError(`PAX ${key} record ${JSON.stringify(raw)} is not a valid id`);
  return value;
}

/** Normalise one tar-stream header into a TarEntry, checking every name. */
export function entryFromHeader(header: tar.Header): TarEntry {
  const type = TYPES[header.type as string];
  if (type === undefined) {
    throw tarError(`tar entry ${JSON.stringify(header.name)} has an unsupported type (${String(header.type)})`);
  }
  const pax = (header.pax ?? {}) as Record<string, string>;
  const path = tarEntryPath(header.name);
  const entry: TarEntry = {
    name: header.name,
    path,
    type,
    mode: (header.mode ?? 0) & 0o7777,
    uid: parseId(pax, 'uid', header.uid ?? 0),
    gid: parseId(pax, 'gid', header.gid ?? 0),
    size: type === 'file' ? header.size ?? 0 : 0,
    mtime: pax.mtime !== undefined && Number.isFinite(Number(pax.mtime)) ? Math.floor(Number(pax.mtime)) : Math.floor((header.mtime?.getTime() ?? 0) / 1000),
  };
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw tarError(`tar entry ${JSON.stringify(header.name)} declares an invalid size`);
  if (type === 'symlink') {
    if (!header.linkname) throw tarError(`symlink ${JSON.stringify(header.name)} has no target`);
    entry.linkname = header.linkname;
  }
  if (type === 'hardlink') {
    if (!header.linkname) throw tarError(`hard link ${JSON.stringify(header.name)} has no target`);
    entry.linkname = tarEntryPath(header.linkname, `hard link target of ${JSON.stringify(header.name)}:`);
    if (entry.linkname === '') throw tarError(`hard link ${JSON.stringify(header.name)} points at the root directory`);
  }
  if (type === 'character-device' || type === 'block-device') {
    entry.devmajor = header.devmajor ?? 0;
    entry.devminor = header.devminor ?? 0;
  }
  const xattrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value;
  }
  if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs;
  return entry;
}

/**
 * Read an uncompressed tar stream entry by entry. Memory stays bounded whatever the archive
 * declares: bodies flow through with backpressure and are never buffered whole.
 */
export async function readTar(input: Readable, onEntry: TarEntryHandler, options: TarReadOptions = {}): Promise<void> {
  const extract = tar.extract();
  let inputError: unknown;
  const feeding = feed(input, extract).catch((err: unknown) => {
    inputError = err;
    extract.destroy(err as Error);
  });
  let handlerFailed = false;
  try {
    for await (const source of extract) {
      throwIfAborted(options.signal);
      const entry = entryFromHeader(source.header);
      // tar-stream gives a directory no body whatever its header's size says, and a directory
      // entry stream with a non-zero size never ends: reading it would wait forever. So a
      // directory's body is empty and never read (a hostile layer must not hang the build).
      const bodiless = source.header.type === 'directory';
      // Readable.from gives handlers a Node stream that pulls from tar-stream's at their pace.
      const body = bodiless ? Readable.from([]) : Readable.from(explained(source as AsyncIterable<Buffer>), { objectMode: false, highWaterMark: 256 * 1024 });
      try {
        await onEntry(entry, body);
      } catch (err) {
        handlerFailed = true;
        throw err;
      } finally {
        body.destroy();
      }
      // Whatever the handler left unread must still pass, or the next header is never reached.
      if (!bodiless) {
        for await (const _ of source as AsyncIterable<Buffer>) {
          // drain
        }
      }
    }
  } catch (err) {
    input.destroy();
    extract.destroy();
    // A failing source (a digest mismatch, a dropped connection) is the cause of whatever followed.
    if (inputError !== undefined) throw readError(inputError);
    if (handlerFailed) throw err;
    throw readError(err);
  }
  await feeding;
  if (inputError !== undefined) throw readError(inputError);
}

/** A body whose read errors (truncation, corrupt gzip) reach the handler as TAR errors. */
async function* explained(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    throw readError(err);
  }
}

function readError(err: unknown): LadingError {
  if (err instanceof LadingError) return err;
  const message = (err as Error)?.message ?? String(err);
  if (/unexpected end of data/i.test(message)) return tarError('the layer ends in the middle of an entry (truncated tar)', err);
  return tarError(`the layer is not a valid tar archive: ${message}`, err);
}

/** Copy `input` into tar-stream's writable with backpressure (node's pipeline does not know streamx). */
async function feed(input: Readable, extract: tar.Extract): Promise<void> {
  for await (const chunk of input as AsyncIterable<Buffer>) {
    if (extract.destroyed) return;
    if (!extract.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          extract.off('drain', done);
          extract.off('close', done);
          resolve();
        };
        extract.on('drain', done);
        extract.on('close', done);
      });
    }
  }
  if (!extract.destroyed) extract.end(undefined);
}
