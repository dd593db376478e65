/**
 * Deterministic tar writing: the same entries give the same bytes on any machine. Entries are
 * sorted, times clamped to the epoch, owners numeric only, hard links written once.
 *
 * Headers, small files (read straight into place) and padding are written into recycled slabs
 * and handed on in pieces of at least 256 KiB (read-slabs.ts); larger files stream through.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { sortEntries, type LayerEntry } from './entry.ts';
import { SlabWriter, SMALL_FILE_LIMIT } from './read-slabs.ts';
import { encodeTarHeader, type TarHeader } from './tar-header.ts';

export interface TarWriteOptions {
  /** Latest mtime any entry may carry, in seconds (SOURCE_DATE_EPOCH); 0 when unset. */
  epoch?: number;
  /**
   * Called once every entry has been read into the stream (so every digest a one-pass reader
   * reports is known), while its last blocks may still be compressing.
   */
  onEntriesWritten?: () => void;
}

/** The largest size a ustar header holds in octal; above it a PAX `size` record is written. */
export const USTAR_MAX_SIZE = 0o77777777777;
/** The largest uid/gid a ustar header holds; above it PAX `uid`/`gid` records are written. */
export const USTAR_MAX_ID = 0o7777777;

/** End of archive: two zero records. */
const END_OF_ARCHIVE = 1024;

/**
 * Turn one entry into a tar header. Exported so that header encoding (PAX records for big sizes
 * and ids) can be tested without writing gigabytes.
 */
export function tarHeaderFor(entry: LayerEntry, epoch: number, hardlinkTarget?: string): TarHeader {
  const type = hardlinkTarget !== undefined ? 'link' : entry.type === 'hardlink' ? 'link' : entry.type;
  const pax: Record<string, string> = {};
  const size = type === 'file' ? entry.size ?? 0 : 0;
  if (size > USTAR_MAX_SIZE) pax.size = String(size);
  if (entry.uid > USTAR_MAX_ID) pax.uid = String(entry.uid);
  if (entry.gid > USTAR_MAX_ID) pax.gid = String(entry.gid);
  for (const [key, value] of Object.entries(entry.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    pax[`SCHILY.xattr.${key}`] = value;
  }
  const header: TarHeader = {
    // Directories end in '/', as every other tar writer (and Docker) records them.
    name: type === 'directory' ? `${entry.path}/` : entry.path,
    type,
    mode: entry.mode & 0o7777,
    uid: Math.min(entry.uid, USTAR_MAX_ID),
    gid: Math.min(entry.gid, USTAR_MAX_ID),
    size,
    mtime: Math.min(Math.max(0, Math.floor(entry.mtime ?? epoch)), epoch),
  };
  const linkname = hardlinkTarget ?? (type === 'symlink' || type === 'link' ? entry.linkname : undefined);
  if (linkname !== undefined) header.linkname = linkname;
  if (type === 'character-device' || type === 'block-device') {
    header.devmajor = entry.devmajor ?? 0;
    header.devminor = entry.devminor ?? 0;
  }
  if (Object.keys(pax).length > 0) header.pax = pax;
  return header;
}

/** Write `entries` as one tar stream. Sources are opened one at a time, in tar order. */
export function createTarStream(entries: LayerEntry[], options: TarWriteOptions = {}): Readable {
  return Readable.from(tarPieces(sortEntries(entries), options.epoch ?? 0, options.onEntriesWritten), { objectMode: false });
}

async function* tarPieces(sorted: LayerEntry[], epoch: number, onEntriesWritten?: () => void): AsyncGenerator<Buffer> {
  const out = new SlabWriter();
  const firstPathOfInode = new Map<string, string>();
  try {
    for (const entry of sorted) {
      if (entry.path === '') continue; // the root itself is never an entry
      let hardlinkTarget: string | undefined;
      if (entry.type === 'file' && entry.linkKey !== undefined) {
        hardlinkTarget = firstPathOfInode.get(entry.linkKey);
        if (hardlinkTarget === undefined) firstPathOfInode.set(entry.linkKey, entry.path);
      }
      const header = tarHeaderFor(entry, epoch, hardlinkTarget);
      out.write(encodeTarHeader(header));
      if (header.size > 0) {
        const streamed = await writeBody(out, header.size, entry);
        if (streamed) {
          // A large file: what was written before it, then its own chunks as they are read.
          yield* out.take(true);
          yield* streamed;
        }
        if (header.size % 512 !== 0) out.zeros(512 - (header.size % 512));
      }
      yield* out.take();
    }
    onEntriesWritten?.();
    out.zeros(END_OF_ARCHIVE);
    yield* out.take(true);
  } finally {
    out.close();
  }
}

type PathSource = Extract<NonNullable<LayerEntry['source']>, { kind: 'path' }>;

/** Write a body into `out`, or return the chunks of one too large to buffer (the caller streams them). */
async function writeBody(out: SlabWriter, size: number, entry: LayerEntry): Promise<AsyncGenerator<Buffer> | undefined> {
  const source = entry.source;
  if (source === undefined) {
    throw new LadingError(ERROR_CODES.INTERNAL, `layer entry ${entry.path} has a size but no content`);
  }
  if (source.kind === 'bytes') {
    if (source.data.byteLength !== size) {
      throw new LadingError(ERROR_CODES.INTERNAL, `layer entry ${entry.path}: ${source.data.byteLength} bytes given, ${size} declared`);
    }
    out.write(source.data);
    return undefined;
  }
  if (source.kind === 'path' && size <= SMALL_FILE_LIMIT) {
    await writeSmallFile(out, size, entry, source);
    return undefined;
  }
  return streamBody(size, entry, source);
}

async function writeSmallFile(out: SlabWriter, size: number, entry: LayerEntry, source: PathSource): Promise<void> {
  let read: ReturnType<SlabWriter['readFile']>;
  try {
    read = out.readFile(source.path, size);
  } catch (err) {
    throw explainBodyError(entry, source, err);
  }
  if (read.bytes.length !== size) throw changedWhileRead(source.path, size);
  read.keep();
  if (source.digest || source.onDigest) {
    const actual = `sha256:${createHash('sha256').update(read.bytes).digest('hex')}`;
    await checkDigest(source, actual);
    source.onDigest?.(actual, read.after);
  }
}

async function* streamBody(size: number, entry: LayerEntry, source: Exclude<NonNullable<LayerEntry['source']>, { kind: 'bytes' }>): AsyncGenerator<Buffer> {
  const input = source.kind === 'path' ? createReadStream(source.path) : await source.open();
  const hash = source.kind === 'path' && (source.digest || source.onDigest) ? createHash('sha256') : undefined;
  let written = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      written += chunk.length;
      if (written > size) throw changedWhileRead(source.kind === 'path' ? source.path : entry.path, size);
      hash?.update(chunk);
      yield chunk;
    }
    if (written !== size) throw changedWhileRead(source.kind === 'path' ? source.path : entry.path, size);
    if (hash && source.kind === 'path') {
      const actual = `sha256:${hash.digest('hex')}`;
      await checkDigest(source, actual);
      source.onDigest?.(actual);
    }
  } catch (err) {
    throw explainBodyError(entry, source, err);
  } finally {
    input.destroy();
  }
}

function changedWhileRead(where: string, size: number): LadingError {
  return new LadingError(ERROR_CODES.CONTEXT, `${where} changed while it was being read (expected ${size} bytes)`, {
    hint: 'do not modify the build context during a build',
  });
}

async function checkDigest(source: PathSource, actual: string): Promise<void> {
  if (source.digest && (await source.digest()) !== actual) {
    throw new LadingError(ERROR_CODES.CONTEXT, `${source.path} changed during the build`, {
      hint: 'do not modify the build context while a build runs; nothing was cached',
    });
  }
}

function explainBodyError(entry: LayerEntry, source: NonNullable<LayerEntry['source']>, err: unknown): LadingError {
  if (err instanceof LadingError) return err;
  const where = source.kind === 'path' ? source.path : entry.path;
  const msg = String((err as Error)?.message ?? err);
  if (typeof (err as NodeJS.ErrnoException)?.code === 'string') {
    return fsError(ERROR_CODES.CONTEXT, 'read', where, err, 'make the file readable by the user running lading, or exclude it in .dockerignore');
  }
  return new LadingError(ERROR_CODES.CONTEXT, `cannot read ${where}: ${msg}`, { cause: err });
}
