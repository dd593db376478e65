/**
 * Snapshots that cost what a step wrote: the step runs on an overlay whose lower layers are the
 * root (and a layer of mount-point stubs), so everything it changed lands in the upper folder.
 * The upper folder becomes layer entries (0/0 character devices → whiteouts; replaced directories
 * → opaque markers), then is merged into the root with renames, so the next step starts from one
 * lower again.
 *
 * Opaque directories are found without reading xattrs (Node has no API for them): on one file
 * system overlayfs reports a copied-up directory with its lower inode number, while a directory
 * that replaced a lower one (rm -rf d; mkdir d) keeps its own. `probeOverlay` checks this holds.
 */
import fs from 'node:fs';
import path from 'node:path';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../layer/entry.ts';
import { forceRemove } from './apply-layer.ts';
import type { HostTools } from './detect.ts';
import { exec, firstLine } from './host.ts';
import type { Owner, OwnerTable } from './ownership.ts';
import { joinRel } from './safe-path.ts';
import { entryFromStat, isWhiteout } from './stat-entry.ts';

export interface OverlayDirs {
  /** The run's folder; overlay options name the others relative to it (short, no commas). */
  dir: string;
  /** Lower folders, top first, absolute. */
  lowers: string[];
  upper: string;
  work: string;
  merged: string;
}

export function overlayDirs(dir: string, lowers: string[]): OverlayDirs {
  return { dir, lowers, upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), merged: path.join(dir, 'merged') };
}

export async function mountOverlay(o: OverlayDirs, tools: HostTools): Promise<void> {
  for (const d of [o.upper, o.work, o.merged]) fs.mkdirSync(d, { recursive: true });
  const lowerdir = o.lowers.map((l) => path.relative(o.dir, l) || '.').join(':');
  // userxattr: the only mode an unprivileged user namespace may use, and it works for root too;
  // without it, removing a lower directory fails with EIO in a user namespace.
  const options = `userxattr,lowerdir=${lowerdir},upperdir=upper,workdir=work`;
  const r = await exec(tools.mount!, ['-t', 'overlay', 'overlay', '-o', options, 'merged'], { cwd: o.dir, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`mount -t overlay failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
}

export async function unmount(target: string, tools: HostTools): Promise<void> {
  const r = await exec(tools.umount!, [target], { timeoutMs: 30_000 });
  if (r.code === 0) return;
  // Something still holds it (a daemon the step left behind in proot mode): detach it lazily.
  const lazy = await exec(tools.umount!, ['-l', target], { timeoutMs: 30_000 });
  if (lazy.code !== 0) throw new Error(`umount ${target} failed: ${firstLine(lazy.stderr || r.stderr)}`);
}

/** Whether overlays work here the way this module relies on; a reason when not. */
export async function probeOverlay(scratch: string, tools: HostTools): Promise<string | undefined> {
  if (!tools.mount || !tools.umount) return 'mount/umount not found on PATH';
  fs.mkdirSync(scratch, { recursive: true });
  const lower = path.join(scratch, 'lower');
  fs.mkdirSync(path.join(lower, 'replaced', 'child'), { recursive: true });
  fs.mkdirSync(path.join(lower, 'kept'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'kept', 'f'), 'x');
  const o = overlayDirs(scratch, [lower]);
  try {
    await mountOverlay(o, tools);
  } catch (err) {
    forceRemove(scratch);
    return (err as Error).message;
  }
  try {
    fs.rmSync(path.join(o.merged, 'replaced'), { recursive: true });
    fs.mkdirSync(path.join(o.merged, 'replaced'));
    fs.appendFileSync(path.join(o.merged, 'kept', 'f'), 'y');
    const inode = (p: string): number => fs.lstatSync(p).ino;
    if (inode(path.join(o.merged, 'kept')) !== inode(path.join(lower, 'kept'))) return 'overlayfs does not keep inode numbers of copied-up directories here';
    if (inode(path.join(o.merged, 'replaced')) === inode(path.join(lower, 'replaced'))) return 'overlayfs reports replaced directories with their old inode here';
    return undefined;
  } catch (err) {
    return `overlayfs misbehaves here: ${(err as Error).message}`;
  } finally {
    await unmount(o.merged, tools).catch(() => undefined);
    forceRemove(scratch);
  }
}

export interface UpperSnapshot {
  entries: LayerEntry[];
  /** Directories that hide everything below them in the lower layers. */
  opaque: Set<string>;
}

/**
 * The entries for what a step wrote into `o.upper`. Must run while `o.merged` is still mounted
 * (opaque directories are recognised through it). `ownerOf` gives the image owner of a path.
 */
export function snapshotUpper(o: OverlayDirs, ownerOf: (rel: string, st: fs.Stats) => Owner): UpperSnapshot {
  const entries: LayerEntry[] = [];
  const opaque = new Set<string>();
  const walk = (rel: string): void => {
    const dirAbs = rel === '' ? o.upper : path.join(o.upper, rel);
    for (const name of fs.readdirSync(dirAbs)) {
      const childRel = joinRel(rel, name);
      const abs = path.join(dirAbs, name);
      const st = fs.lstatSync(abs);
      if (isWhiteout(st)) {
        entries.push(whiteoutEntry(childRel));
        continue;
      }
      const entry = entryFromStat(childRel, abs, st, ownerOf(childRel, st));
      if (entry) entries.push(entry);
      if (st.isDirectory()) {
        if (replacesLowerDir(o, childRel)) {
          opaque.add(childRel);
          entries.push(opaqueEntry(childRel));
        }
        walk(childRel);
      }
    }
  };
  walk('');
  return { entries, opaque };
}

function replacesLowerDir(o: OverlayDirs, rel: string): boolean {
  for (const lower of o.lowers) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(lower, rel));
    } catch {
      continue;
    }
    if (!st.isDirectory()) return false;
    return fs.lstatSync(path.join(o.merged, rel)).ino !== st.ino;
  }
  return false;
}

/**
 * Move what `upper` holds into `base` (after the overlay is unmounted): whiteouts delete, opaque
 * and new directories move whole, other directories take the upper's metadata and recurse.
 * Renames within one file system: the cost follows what the step wrote.
 */
export function mergeUpper(base: string, upper: string, opaque: Set<string>, owners: OwnerTable, forget: (rel: string) => void): void {
  const merge = (rel: string): void => {
    const upperDir = rel === '' ? upper : path.join(upper, rel);
    for (const name of fs.readdirSync(upperDir)) {
      const childRel = joinRel(rel, name);
      const u = path.join(upperDir, name);
      const b = path.join(base, childRel);
      const st = fs.lstatSync(u);
      let bst: fs.Stats | undefined;
      try {
        bst = fs.lstatSync(b);
      } catch {
        bst = undefined;
      }
      if (isWhiteout(st)) {
        if (bst) forceRemove(b);
        forget(childRel);
        owners.forgetTree(childRel);
        continue;
      }
      if (st.isDirectory() && bst?.isDirectory() && !opaque.has(childRel)) {
        fs.lchownSync(b, st.uid, st.gid);
        fs.chmodSync(b, st.mode & 0o7777);
        fs.utimesSync(b, st.atime, st.mtime);
        merge(childRel);
        continue;
      }
      if (bst?.isDirectory()) forceRemove(b);
      fs.renameSync(u, b);
      forget(childRel);
    }
  };
  merge('');
}
