/**
 * COPY/ADD semantics: where each matched source lands, with which owner and mode, and which
 * parent directories the layer must carry. The plan is computed before any byte is read so that
 * its description (plus content digests) is the step's cache key.
 */
import path from 'node:path/posix';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type { ContentSource, LayerEntry, LayerEntryType } from '../layer/entry.ts';
import type { FsIndex } from '../layer/fs-index.ts';
import { ChmodError, parseChmod as parseModeChange, type ModeChange } from '../graph/chmod.ts';
import type { Ids } from './users.ts';

/**
 * One file-system object a COPY reads, wherever it comes from (context, stage, image, heredoc,
 * archive). Its uid/gid are what it lands with unless --chown says otherwise: 0 for context files
 * and heredocs, the recorded owner for files from another stage, image or archive.
 */
export interface CopySourceFile {
  /** Path relative to the source root it was matched under. */
  rel: string;
  type: Extract<LayerEntryType, 'file' | 'directory' | 'symlink'>;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname?: string;
  linkKey?: string;
  mtime?: number;
  source?: ContentSource;
  /** Content digest, computed on demand (stat cache, or known from the source). */
  digest?: () => Promise<string>;
  /** The digest if it is known without I/O (a stat-cache hit); lets warm builds skip promises. */
  knownDigest?: () => string | undefined;
}

export interface CopyMatch {
  /** The path the source matched (before a symlink it names is followed). */
  path: string;
  root: CopySourceFile;
  /** For a directory: everything below it; for a file: [root]. */
  entries: CopySourceFile[];
  /**
   * The source as written, when known. `COPY --parents` keeps only the directories after a `/./`
   * in it (rsync's pivot), which the cleaned `path` no longer shows.
   */
  source?: string;
}

export interface CopyPlanOptions {
  /** Absolute destination (the dispatcher resolved it against the working directory). */
  dest: string;
  /** The destination was written as a folder (trailing `/`, `.`, or empty). */
  destIsDir: boolean;
  parents: boolean;
  /** The image's file system before the step; absent for `--link` and scratch. */
  fs?: FsIndex;
  /** `--chown`: overrides the owner every source file carries. */
  owner?: Ids;
  chmod?: string;
  location: SourceLocation;
}

export interface PlannedEntry {
  path: string;
  file?: CopySourceFile;
  entry: LayerEntry;
}

/**
 * Where every source goes, following the Dockerfile reference's COPY rules:
 * - a directory source copies its contents (not itself) into the destination, merging with what
 *   is there; copying a directory onto an existing file is an error;
 * - a file source lands at the destination itself, unless the destination was written as a folder
 *   (trailing `/`) or already is one, where it keeps its name inside; a file onto an existing
 *   directory of the same name is an error;
 * - with `--parents` every source keeps its path (after a `/./` pivot) below the destination;
 * - symlinks in the destination path are followed inside the image (not with `--link`, which sees
 *   an empty file system); missing parent folders are created (0755, owned by --chown or root).
 * Later sources overwrite earlier ones at the same path. BuildKit does not require several sources
 * to go to a folder: `COPY a b /f` leaves b at /f (moby/buildkit#1853), and so do we.
 */
export function planCopy(matches: CopyMatch[], options: CopyPlanOptions): PlannedEntry[] {
  const { fs } = options;
  const chmod = options.chmod !== undefined ? parseChmod(options.chmod, options.location) : undefined;
  const planned = new Map<string, PlannedEntry>();
  const destDir = resolveIn(fs, options.dest);
  const fail = (message: string, hint: string): never => {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, { location: options.location, hint });
  };
  /** What is at a resolved path after the sources placed so far: the plan wins over the image. */
  const typeAt = (p: string): LayerEntryType | undefined => planned.get(p)?.entry.type ?? fs?.get(p)?.type;
  const isDir = (p: string): boolean => p === '' || typeAt(p) === 'directory';

  const place = (destPath: string, file: CopySourceFile): void => {
    const there = typeAt(destPath);
    if (file.type === 'directory' && there !== undefined && there !== 'directory') {
      fail(`cannot copy a directory onto the file /${destPath}`, 'remove the file first, or copy to another path');
    }
    if (file.type !== 'directory' && there === 'directory') {
      fail(`cannot copy a file onto the directory /${destPath}`, 'end the destination with / to copy into the folder, or remove it first');
    }
    const entry: LayerEntry = {
      path: destPath,
      type: file.type,
      mode: file.type === 'symlink' ? 0o777 : chmod ? chmod(file.mode, file.type === 'directory') : file.mode,
      uid: options.owner?.uid ?? file.uid,
      gid: options.owner?.gid ?? file.gid,
    };
    if (file.type === 'file') {
      entry.size = file.size;
      if (file.source) entry.source = file.source;
      if (file.linkKey) entry.linkKey = file.linkKey;
    }
    if (file.linkname !== undefined) entry.linkname = file.linkname;
    if (file.mtime !== undefined) entry.mtime = file.mtime;
    planned.delete(destPath);
    planned.set(destPath, { path: destPath, file, entry });
  };

  for (const match of matches) {
    const root = match.root;
    const kept = options.parents ? parentsPath(match) : undefined;
    if (root.type === 'directory') {
      const base = kept !== undefined ? resolveIn(fs, path.join(destDir, kept)) : destDir;
      // A folder that already exists keeps its own metadata. A new one is made like any missing
      // parent (0755, owned by --chown or root), never with the source folder's mode, owner or
      // --chmod: BuildKit and buildah both create it so.
      if (base !== '' && !isDir(base)) {
        if (typeAt(base) !== undefined) fail(`cannot copy a directory onto the file /${base}`, 'remove the file first, or copy to another path');
        planned.set(base, { path: base, entry: { path: base, type: 'directory', mode: 0o755, uid: options.owner?.uid ?? 0, gid: options.owner?.gid ?? 0 } });
      }
      for (const file of match.entries) {
        const rel = root.rel === '' ? file.rel : file.rel.slice(root.rel.length + 1);
        place(joinClean(base, rel), file);
      }
      continue;
    }
    let target: string;
    if (kept !== undefined) target = joinClean(resolveIn(fs, path.dirname(path.join(destDir, kept))), path.basename(kept));
    else if (options.destIsDir || isDir(destDir)) target = joinClean(destDir, path.basename(match.path));
    else target = resolveParent(options.dest, fs);
    if (target === '') fail('cannot copy a file onto the root directory', 'end the destination with / to copy into a folder');
    place(target, root);
  }

  addParents(planned, options);
  return [...planned.values()];
}

/** `COPY --parents`: the source's path below the destination, from its `/./` pivot if it has one. */
function parentsPath(match: CopyMatch): string {
  const pivot = match.source?.indexOf('/./') ?? -1;
  if (pivot < 0) return match.path;
  const prefix = path.normalize(`/${match.source!.slice(0, pivot)}`).slice(1);
  if (prefix === '') return match.path;
  return match.path === prefix ? '' : match.path.startsWith(`${prefix}/`) ? match.path.slice(prefix.length + 1) : match.path;
}

/** Every ancestor of a planned path: from the image when it has it, created otherwise. */
function addParents(planned: Map<string, PlannedEntry>, options: CopyPlanOptions): void {
  const { fs } = options;
  for (const p of [...planned.keys()]) {
    let dir = path.dirname(p);
    while (dir !== '.' && dir !== '' && !planned.has(dir)) {
      const existing = fs?.get(dir);
      if (existing?.type === 'directory') {
        planned.set(dir, {
          path: dir,
          entry: { path: dir, type: 'directory', mode: existing.mode, uid: existing.uid, gid: existing.gid, mtime: existing.mtime },
        });
      } else {
        planned.set(dir, {
          path: dir,
          entry: { path: dir, type: 'directory', mode: 0o755, uid: options.owner?.uid ?? 0, gid: options.owner?.gid ?? 0 },
        });
      }
      dir = path.dirname(dir);
    }
  }
}

/** `a` and `b` joined and cleaned, relative to the image root (exported for its test). */
export function joinClean(a: string, b: string): string {
  // Most calls join a clean folder and a clean relative path (a context walk's): concatenating
  // them is the same answer as path.join at a tenth of the cost, which 20,000 files notice.
  if (isClean(a) && isClean(b)) return a === '' ? b : b === '' ? a : `${a}/${b}`;
  return path.join('/', a, b).slice(1);
}

/** Relative, no empty, `.` or `..` component, no leading or trailing slash ('' is clean). */
function isClean(p: string): boolean {
  return !/(?:^|\/)\.{1,2}(?:\/|$)|\/\/|^\/|\/$/.test(p);
}

/** A folder path with symlinks resolved inside the image (cleaned only, without an image). */
function resolveIn(fs: FsIndex | undefined, p: string): string {
  const clean = path.normalize(`/${p}`).slice(1).replace(/\/$/, '');
  return fs ? fs.resolve(clean, true) : clean;
}

/** A file destination: resolve its folder, keep its own name (a symlink there is replaced). */
function resolveParent(dest: string, fs: FsIndex | undefined): string {
  const clean = path.normalize(`/${dest}`).slice(1).replace(/\/$/, '');
  if (!fs) return clean;
  const dir = path.dirname(clean);
  const parent = dir === '.' ? '' : fs.resolve(dir, true);
  return joinClean(parent, path.basename(clean));
}

/** `--chmod=0755` or symbolic `u+x,g-w`; returns a function of (old mode, is directory). */
export function parseChmod(spec: string, location: SourceLocation): ModeChange {
  try {
    return parseModeChange(spec);
  } catch (err) {
    if (!(err instanceof ChmodError)) throw err;
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, err.message, {
      location,
      hint: 'use an octal mode such as 755 or symbolic clauses such as u+x,g-w',
    });
  }
}

/**
 * What a COPY's key hashes besides the instruction: every source object with its type, mode,
 * link target, owner and content digest. Where things land depends only on the
 * instruction and the image before the step, which the parent key already names, so a cache
 * lookup never needs the image's files.
 */
export async function describeSources(matches: CopyMatch[]): Promise<string[]> {
  const lines: string[] = [];
  const pending: Promise<void>[] = [];
  for (const match of matches) {
    const files = match.root.type === 'directory' ? [match.root, ...match.entries] : [match.root];
    for (const f of files) {
      const prefix = `${match.path}\t${f.rel}\t${f.type}\t${f.mode.toString(8)}\t${f.uid}:${f.gid}\t${f.mtime ?? ''}\t${f.linkKey ? 'hardlink' : ''}\t`;
      const at = lines.length;
      if (f.type === 'symlink') lines.push(prefix + (f.linkname ?? ''));
      else if (f.type !== 'file' || !f.digest) lines.push(prefix);
      else {
        const known = f.knownDigest?.();
        lines.push(prefix + (known ?? ''));
        // Unknown files are hashed all at once (the stat cache bounds the concurrency).
        if (known === undefined) pending.push(f.digest().then((d) => void (lines[at] = prefix + d)));
      }
    }
  }
  await Promise.all(pending);
  return lines;
}
