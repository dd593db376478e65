/**
 * Deterministic tar writing on tar-stream: the same entries give the same bytes on any machine.
 * Entries are sorted, times clamped to the epoch, owners numeric only, hard links written once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import { sortEntries, type LayerEntry } from './entry.ts';
import { readSmallFile, SMALL_FILE_LIMIT } from './read-slabs.ts';

const EMPTY = Buffer.alloc(0);

type TarHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

export interface TarWriteOptions {
  /** Latest mtime any entry may carry, in seconds (SOURCE_DATE_EPOCH); 0 when unset. */
  epoch?: number;
}

/** The largest size a ustar header holds in octal; above it a PAX `size` record is written. */
export const USTAR_MAX_SIZE = 0o77777777777;
/** The largest uid/gid a ustar header holds; above it PAX `uid`/`gid` records are written. */
export const USTAR_MAX_ID = 0o7777777;

// tar-stream replaces a zero mode with its defaults; passing the file-type bits keeps the
// permission bits exact (the header only stores mode & 0o7777).
const TYPE_BITS: Record<string, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/**
 * Turn one entry into a tar-stream header. Exported so that header encoding (PAX records for big
 * sizes and ids) can be tested without writing gigabytes.
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
  const mtime = Math.min(Math.max(0, Math.floor(entry.mtime ?? epoch)), epoch);
  const header: TarHeader = {
    // Directories end in '/', as every other tar writer (and Docker) records them.
    name: type === 'directory' ? `${entry.path}/` : entry.path,
    type,
    mode: (entry.mode & 0o7777) | (TYPE_BITS[type] ?? 0o100000),
    uid: Math.min(entry.uid, USTAR_MAX_ID),
    gid: Math.min(entry.gid, USTAR_MAX_ID),
    size,
    mtime: new Date(mtime * 1000),
    uname: '',
    gname: '',
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
  const epoch = options.epoch ?? 0;
  const sorted = sortEntries(entries);
  const pack = tar.pack();
  const firstPathOfInode = new Map<string, string>();

  let failure: unknown;
  const writing = (async () => {
    for (const entry of sorted) {
      if (entry.path === '') continue; // the root itself is never an entry
      let hardlinkTarget: string | undefined;
      if (entry.type === 'file' && entry.linkKey !== undefined) {
        hardlinkTarget = firstPathOfInode.get(entry.linkKey);
        if (hardlinkTarget === undefined) firstPathOfInode.set(entry.linkKey, entry.path);
      }
      const header = tarHeaderFor(entry, epoch, hardlinkTarget);
      if (header.type === 'file' && (header.size ?? 0) > 0) {
        await writeBody(pack, header, entry);
      } else {
        // An empty body closes a file entry at once; other types have none.
        await new Promise<void>((resolve, reject) => {
          const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
          if (header.type === 'file') pack.entry(header, EMPTY, cb);
          else pack.entry(header, cb);
        });
      }
    }
    pack.finalize();
  })().catch((err: unknown) => {
    failure = err;
    pack.destroy(err as Error);
  });
  // The failure reaches the reader through `chunks` below; a pack that fails before anyone reads
  // it (the first file unreadable) must not also raise an unhandled 'error' event.
  pack.on('error', () => {});

  // tar-stream's pack is a streamx stream; Readable.from gives a Node stream that pulls from it
  // only as fast as the consumer reads, so memory stays bounded. When the pack fails, report the
  // writer's own error (which names the file) rather than tar-stream's.
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of pack as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      await writing;
      throw failure ?? err;
    }
    await writing;
    if (failure !== undefined) throw failure;
  }
  return Readable.from(chunks(), { objectMode: false });
}

async function writeBody(pack: tar.Pack, header: TarHeader, entry: LayerEntry): Promise<void> {
  const source = entry.source;
  if (source === undefined) {
    throw new LadingError(ERROR_CODES.INTERNAL, `layer entry ${entry.path} has a size but no content`);
  }
  if (source.kind === 'bytes') {
    if (source.data.byteLength !== header.size) {
      throw new LadingError(ERROR_CODES.INTERNAL, `layer entry ${entry.path}: ${source.data.byteLength} bytes given, ${header.size} declared`);
    }
    await new Promise<void>((resolve, reject) =>
      pack.entry(header, Buffer.from(source.data.buffer, source.data.byteOffset, source.data.byteLength), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    return;
  }
  if (source.kind === 'path' && (header.size ?? 0) <= SYNC_READ_LIMIT) {
    await writeSmallFile(pack, header, entry, source);
    return;
  }
  let sinkError: Error | undefined;
  let sink: ReturnType<tar.Pack['entry']> | undefined;
  const done = new Promise<void>((resolve, reject) => {
    sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  // The entry can fail before we wait for it (the file changed mid-read); the read loop below
  // reports that, so this promise must never count as unhandled.
  done.catch(() => undefined);
  const input = source.kind === 'path' ? createReadStream(source.path) : await source.open();
  const hash = source.kind === 'path' && (source.digest || source.onDigest) ? createHash('sha256') : undefined;
  try {
    // tar-stream's entry is a streamx stream, which node:stream's pipeline does not fully
    // understand; pump by hand with backpressure.
    const out = sink!;
    out.on('error', (err: Error) => {
      sinkError = err;
    });
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (sinkError) throw sinkError;
      hash?.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
    if (hash && source.kind === 'path') {
      const actual = `sha256:${hash.digest('hex')}`;
      await checkDigest(source, actual);
      source.onDigest?.(actual);
    }
    out.end(undefined);
    await done;
  } catch (err) {
    input.destroy();
    throw explainBodyError(entry, header.size ?? 0, source, err);
  }
}

/**
 * Small files are read whole with one synchronous call (from the page cache, microseconds), into
 * recycled memory (read-slabs.ts): thousands of tiny read streams, or buffers, cost more in
 * promises and garbage than the bytes themselves.
 */
const SYNC_READ_LIMIT = SMALL_FILE_LIMIT;

type PathSource = { path: string; digest?: () => Promise<string>; onDigest?: (digest: string, after?: Stats) => void };

async function checkDigest(source: PathSource, actual: string): Promise<void> {
  if (source.digest && (await source.digest()) !== actual) {
    throw new LadingError(ERROR_CODES.CONTEXT, `${source.path} changed during the build`, {
      hint: 'do not modify the build context while a build runs; nothing was cached',
    });
  }
}

async function writeSmallFile(pack: tar.Pack, header: TarHeader, entry: LayerEntry, source: PathSource): Promise<void> {
  let data: Buffer;
  let after: Stats;
  try {
    ({ bytes: data, after } = readSmallFile(source.path, header.size ?? 0));
  } catch (err) {
    throw explainBodyError(entry, header.size ?? 0, { kind: 'path', path: source.path }, err);
  }
  if (data.length !== header.size) {
    throw new LadingError(ERROR_CODES.CONTEXT, `${source.path} changed while it was being read (expected ${header.size} bytes)`, {
      hint: 'do not modify the build context during a build',
    });
  }
  if (source.digest || source.onDigest) {
    const actual = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await checkDigest(source, actual);
    source.onDigest?.(actual, after);
  }
  await new Promise<void>((resolve, reject) => pack.entry(header, data, (err) => (err ? reject(err) : resolve())));
}

function explainBodyError(entry: LayerEntry, size: number, source: NonNullable<LayerEntry['source']>, err: unknown): LadingError {
  if (err instanceof LadingError) return err;
  const where = source.kind === 'path' ? source.path : entry.path;
  const msg = String((err as Error)?.message ?? err);
  if (/size mismatch/i.test(msg)) {
    return new LadingError(ERROR_CODES.CONTEXT, `${where} changed while it was being read (expected ${size} bytes)`, {
      cause: err,
      hint: 'do not modify the build context during a build',
    });
  }
  if (typeof (err as NodeJS.ErrnoException)?.code === 'string') {
    return fsError(ERROR_CODES.CONTEXT, 'read', where, err, 'make the file readable by the user running lading, or exclude it in .dockerignore');
  }
  return new LadingError(ERROR_CODES.CONTEXT, `cannot read ${where}: ${msg}`, { cause: err });
}
