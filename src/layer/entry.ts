/**
 * What a layer holds, independent of where the bytes come from: the entries of a tar, with the
 * path rules and the order that make the same set of entries always give the same tar.
 */
import type { Stats } from 'node:fs';
import type { Readable } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { compareUtf8 } from '../utf8-order.ts';

export type LayerEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo';

/** Where a regular file's bytes come from. */
export type ContentSource =
  /**
   * A file on disk. With `digest` (the content digest the step's cache key was computed from),
   * the writer hashes the bytes it reads and fails on a difference: a file rewritten during the
   * build (even within one timestamp tick) never puts a layer under a key it does not match.
   */
  | {
      kind: 'path';
      path: string;
      digest?: () => Promise<string>;
      /**
       * Told the sha256 of the bytes the writer read (a cold build's one pass over the file), and
       * when it has one, the file's stat taken on the open file after the read.
       */
      onDigest?: (digest: string, after?: Stats) => void;
    }
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'stream'; open: () => Readable | Promise<Readable> };

export interface LayerEntry {
  /** Path inside the image, relative to `/`, `/`-separated, no `.` or `..` components, no trailing slash. */
  path: string;
  type: LayerEntryType;
  /** Permission bits, with setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Byte length of a regular file's content. */
  size?: number;
  /** Symlink target (kept verbatim) or, for a hard link, the path of the entry it links to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Seconds since the epoch; clamped to the writer's epoch. */
  mtime?: number;
  /** Extended attributes (security.capability, ...), written as SCHILY.xattr PAX records. */
  xattrs?: Record<string, string>;
  source?: ContentSource;
  /**
   * Entries of type 'file' sharing a link key are one inode: the writer gives the first (in tar
   * order) the body and makes the others hard links to it.
   */
  linkKey?: string;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Clean an in-image path: strip leading `/` and `./`, fold `.` and `..` (never above the root),
 * drop a trailing slash. Returns '' for the root itself.
 */
export function cleanImagePath(input: string): string {
  const out: string[] = [];
  for (const part of input.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

/** A deletion marker for `path` (a `.wh.` entry in its parent). */
export function whiteoutEntry(path: string): LayerEntry {
  const clean = cleanImagePath(path);
  if (clean === '') throw new LadingError(ERROR_CODES.INTERNAL, 'cannot write a whiteout for the root directory');
  const slash = clean.lastIndexOf('/');
  const name = WHITEOUT_PREFIX + clean.slice(slash + 1);
  return { path: slash < 0 ? name : `${clean.slice(0, slash)}/${name}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 };
}

/** A marker hiding everything lower layers hold below `dir`. */
export function opaqueEntry(dir: string): LayerEntry {
  const clean = cleanImagePath(dir);
  return { path: clean === '' ? OPAQUE_MARKER : `${clean}/${OPAQUE_MARKER}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 };
}

/**
 * Order of entries in a tar: component by component, parents before children, and inside a
 * directory the opaque marker first (so that readers applying entries in order never hide
 * siblings from the same layer), then names by byte value.
 */
export function compareEntryPaths(a: string, b: string): number {
  if (a === b) return 0;
  return compareParts(a.split('/'), b.split('/'));
}

function compareParts(pa: string[], pb: string[]): number {
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (x === OPAQUE_MARKER) return -1;
    if (y === OPAQUE_MARKER) return 1;
    return compareUtf8(x, y);
  }
  return pa.length - pb.length;
}

/** Sort entries into tar order and reject duplicates (two entries for one path is always a bug). */
export function sortEntries(entries: LayerEntry[]): LayerEntry[] {
  // Each path is split once, not once per comparison.
  const keyed = entries.map((entry) => ({ entry, parts: entry.path.split('/') }));
  keyed.sort((a, b) => (a.entry.path === b.entry.path ? 0 : compareParts(a.parts, b.parts)));
  const sorted = keyed.map((k) => k.entry);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.path === sorted[i - 1]!.path) {
      throw new LadingError(ERROR_CODES.INTERNAL, `two layer entries for one path: ${sorted[i]!.path}`);
    }
  }
  return sorted;
}
