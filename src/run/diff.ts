/**
 * The fallback snapshot where no overlay can be mounted: walk the root before and after a step and
 * compare. Metadata decides (type, mode, owner, size, mtime, ctime, inode and birth time, link
 * count, link target): a write, chmod, chown, link or rename always moves ctime, which user space cannot set
 * back. Only on a file system with whole-second timestamps can a change hide inside the second of
 * the snapshot; files in that window are hashed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../layer/entry.ts';
import type { Owner } from './ownership.ts';
import { joinRel, splitPath } from './safe-path.ts';
import { entryFromStat } from './stat-entry.ts';

interface FileMeta {
  /** Type bits of st_mode. */
  type: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** Birth time: tells a recreated file from a changed one even when the inode number is reused. */
  birthtimeMs: number;
  nlink: number;
  link?: string;
}

export interface Snapshot {
  root: string;
  files: Map<string, FileMeta>;
  /** True when no timestamp had a fraction of a second: changes may hide inside one second. */
  coarse: boolean;
  /** Content hashes of files whose ctime fell in the last second before the snapshot (coarse only). */
  racy: Map<string, string>;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

function metaOf(abs: string, st: fs.Stats): FileMeta {
  const meta: FileMeta = {
    type: st.mode & S_IFMT,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    birthtimeMs: st.birthtimeMs,
    nlink: st.nlink,
  };
  if (st.isSymbolicLink()) meta.link = fs.readlinkSync(abs);
  return meta;
}

function hashFile(abs: string): string {
  return createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
}

/** Walk the whole root. */
export function takeSnapshot(root: string): Snapshot {
  const startedSec = Math.floor(Date.now() / 1000);
  const files = new Map<string, FileMeta>();
  let fractional = false;
  const walk = (rel: string): void => {
    const dirAbs = rel === '' ? root : path.join(root, rel);
    for (const name of fs.readdirSync(dirAbs)) {
      const childRel = joinRel(rel, name);
      const abs = path.join(dirAbs, name);
      const st = fs.lstatSync(abs);
      const meta = metaOf(abs, st);
      if (!fractional && (meta.ctimeMs % 1000 !== 0 || meta.mtimeMs % 1000 !== 0)) fractional = true;
      files.set(childRel, meta);
      if (meta.type === S_IFDIR) walk(childRel);
    }
  };
  walk('');
  const racy = new Map<string, string>();
  if (!fractional) {
    for (const [rel, meta] of files) {
      if (meta.type === 0o100000 && meta.ctimeMs >= (startedSec - 1) * 1000) racy.set(rel, hashFile(path.join(root, rel)));
    }
  }
  return { root, files, coarse: !fractional, racy };
}

export interface DiffOptions {
  ownerOf: (rel: string, st: fs.Stats, existedBefore: boolean) => Owner;
  /** Directories whose times moved only because mount stubs were made and removed in them. */
  ignoreTimes?: Set<string>;
}

function changed(rel: string, a: FileMeta, b: FileMeta, before: Snapshot, options: DiffOptions): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return true;
  if (a.type === S_IFDIR) {
    if (options.ignoreTimes?.has(rel)) return false;
    return a.mtimeMs !== b.mtimeMs || a.ctimeMs !== b.ctimeMs;
  }
  if (a.size !== b.size || a.mtimeMs !== b.mtimeMs || a.ctimeMs !== b.ctimeMs || a.ino !== b.ino || a.nlink !== b.nlink || a.link !== b.link) return true;
  const hash = before.racy.get(rel);
  return hash !== undefined && hashFile(path.join(before.root, rel)) !== hash;
}

/** The entries that turn `before` into `after` (both of the same root). */
export function diffSnapshots(before: Snapshot, after: Snapshot, options: DiffOptions): LayerEntry[] {
  const root = after.root;
  const out = new Map<string, LayerEntry>();
  const replaced = new Set<string>();
  const add = (rel: string, existedBefore: boolean): void => {
    if (out.has(rel)) return;
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    const entry = entryFromStat(rel, abs, st, options.ownerOf(rel, st, existedBefore));
    if (entry) out.set(rel, entry);
  };
  const underReplaced = (rel: string): boolean => {
    for (let dir = splitPath(rel)[0]; ; dir = splitPath(dir)[0]) {
      if (replaced.has(dir)) return true;
      if (dir === '') return false;
    }
  };

  for (const [rel, a] of after.files) {
    const b = before.files.get(rel);
    if (!b || underReplaced(rel)) {
      add(rel, false);
      continue;
    }
    if (a.type !== b.type) {
      add(rel, false);
      continue;
    }
    const sameObject = a.ino === b.ino && a.birthtimeMs === b.birthtimeMs;
    if (a.type === S_IFDIR && !sameObject) {
      // Removed and made again: lower layers' content below it must be hidden.
      replaced.add(rel);
      add(rel, false);
      out.set(`${rel}\0opaque`, opaqueEntry(rel));
      continue;
    }
    // Same type, same name: a new inode still means a new file (rm f; echo > f).
    if (!sameObject || changed(rel, a, b, before, options)) add(rel, sameObject);
  }

  for (const rel of before.files.keys()) {
    if (after.files.has(rel)) continue;
    const parent = splitPath(rel)[0];
    // Only the topmost deleted path gets a whiteout; inside a replaced directory none is needed.
    if (parent !== '' && (!after.files.has(parent) || after.files.get(parent)!.type !== S_IFDIR || before.files.get(parent)?.type !== S_IFDIR)) continue;
    if (underReplaced(rel)) continue;
    out.set(`${rel}\0whiteout`, whiteoutEntry(rel));
  }

  // A tar holds a changed path's parents too, with their current metadata (as Docker's do).
  for (const entry of [...out.values()]) {
    for (let dir = splitPath(entry.path)[0]; dir !== ''; dir = splitPath(dir)[0]) {
      if (out.has(dir)) break;
      add(dir, before.files.has(dir));
    }
  }
  return [...out.values()];
}
