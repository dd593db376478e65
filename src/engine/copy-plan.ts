/**
 * COPY/ADD semantics: where each matched source lands, with which owner and mode, and which
 * parent directories the layer must carry. The plan is computed before any byte is read so that
 * its description (plus content digests) is the step's cache key.
 */
import path from 'node:path/posix';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type { ContentSource, LayerEntry, LayerEntryType } from '../layer/entry.ts';
import type { FsIndex } from '../layer/fs-index.ts';
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
}

export interface CopyPlanOptions {
  dest: string;
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

/** Where every source goes. Later sources overwrite earlier ones at the same path, as in Docker. */
export function planCopy(matches: CopyMatch[], options: CopyPlanOptions): PlannedEntry[] {
  const { fs } = options;
  const chmod = options.chmod !== undefined ? parseChmod(options.chmod, options.location) : undefined;
  const planned = new Map<string, PlannedEntry>();
  const destDir = resolveDir(options.dest, fs);

  const place = (destPath: string, file: CopySourceFile): void => {
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
    // A later file replaces an earlier one; a directory never replaces a directory's metadata
    // once set by a more specific source.
    planned.delete(destPath);
    planned.set(destPath, { path: destPath, file, entry });
  };

  for (const match of matches) {
    const root = match.root;
    if (root.type === 'directory') {
      const base = options.parents ? path.join(destDir, match.path) : destDir;
      if (base !== '' && !planned.has(base) && !(fs?.isDirectory(base) ?? false)) place(base, root);
      for (const file of match.entries) {
        const rel = root.rel === '' ? file.rel : file.rel.slice(root.rel.length + 1);
        place(joinClean(base, rel), file);
      }
      continue;
    }
    let target: string;
    if (options.parents) target = joinClean(destDir, match.path);
    else if (options.destIsDir || fs?.isDirectory(options.dest)) target = joinClean(destDir, path.basename(match.path));
    else target = resolveParent(options.dest, fs);
    if (target === '') {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'cannot copy a file onto the root directory', {
        location: options.location,
        hint: 'end the destination with / to copy into a folder',
      });
    }
    place(target, root);
  }

  addParents(planned, options);
  return [...planned.values()];
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

function joinClean(a: string, b: string): string {
  return path.join('/', a, b).slice(1);
}

/** The destination folder with symlinks resolved inside the image. */
function resolveDir(dest: string, fs: FsIndex | undefined): string {
  const clean = path.normalize(`/${dest}`).slice(1);
  return fs ? fs.resolve(clean, true) : clean;
}

/** A file destination: resolve its folder, keep its own name (a symlink there is replaced). */
function resolveParent(dest: string, fs: FsIndex | undefined): string {
  const clean = path.normalize(`/${dest}`).slice(1);
  if (!fs) return clean;
  const dir = path.dirname(clean);
  const parent = dir === '.' ? '' : fs.resolve(dir, true);
  return joinClean(parent, path.basename(clean));
}

/** `--chmod=0755` or symbolic `u+x,g-w`; returns a function of (old mode, is directory). */
export function parseChmod(spec: string, location: SourceLocation): (mode: number, isDir: boolean) => number {
  if (/^[0-7]{3,4}$/.test(spec)) {
    const m = Number.parseInt(spec, 8);
    return () => m;
  }
  const clauses = spec.split(',');
  const parsed = clauses.map((clause) => {
    const m = /^([ugoa]*)([+=-])([rwxXst]*)$/.exec(clause);
    if (!m) {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid --chmod "${spec}"`, {
        location,
        hint: 'use an octal mode such as 755 or symbolic clauses such as u+x,g-w',
      });
    }
    return { who: m[1] || 'a', op: m[2]!, perms: m[3]! };
  });
  return (mode, isDir) => {
    let out = mode;
    for (const { who, op, perms } of parsed) {
      let bits = 0;
      const classes = who.includes('a') ? 'ugo' : who;
      for (const c of classes) {
        const shift = c === 'u' ? 6 : c === 'g' ? 3 : 0;
        for (const p of perms) {
          if (p === 'r') bits |= 4 << shift;
          else if (p === 'w') bits |= 2 << shift;
          else if (p === 'x' || (p === 'X' && (isDir || (mode & 0o111) !== 0))) bits |= 1 << shift;
          else if (p === 's' && c === 'u') bits |= 0o4000;
          else if (p === 's' && c === 'g') bits |= 0o2000;
          else if (p === 't') bits |= 0o1000;
        }
      }
      if (op === '+') out |= bits;
      else if (op === '-') out &= ~bits;
      else {
        let mask = 0;
        for (const c of classes) mask |= 0o7 << (c === 'u' ? 6 : c === 'g' ? 3 : 0);
        out = (out & ~mask) | bits;
      }
    }
    return out & 0o7777;
  };
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
