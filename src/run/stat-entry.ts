/** A file on disk as a LayerEntry: the one conversion both snapshot methods share. */
import fs from 'node:fs';
import type { LayerEntry } from '../layer/entry.ts';
import type { Owner } from './ownership.ts';

/** Linux's encoding of st_rdev (glibc's gnu_dev_major/minor). */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * The entry for `rel` (content read from `abs` when written), or undefined for what a tar cannot
 * hold (sockets). Files sharing an inode share a linkKey, so the writer stores them once.
 */
export function entryFromStat(rel: string, abs: string, st: fs.Stats, owner: Owner): LayerEntry | undefined {
  const common = { path: rel, mode: st.mode & 0o7777, uid: owner.uid, gid: owner.gid, mtime: Math.floor(st.mtimeMs / 1000) };
  if (st.isDirectory()) return { ...common, type: 'directory' };
  if (st.isFile()) {
    const entry: LayerEntry = { ...common, type: 'file', size: st.size, source: { kind: 'path', path: abs } };
    if (st.nlink > 1) entry.linkKey = `${st.dev}:${st.ino}`;
    return entry;
  }
  if (st.isSymbolicLink()) return { ...common, type: 'symlink', linkname: fs.readlinkSync(abs) };
  if (st.isFIFO()) return { ...common, type: 'fifo' };
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = deviceNumbers(st.rdev);
    return { ...common, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor };
  }
  return undefined;
}
