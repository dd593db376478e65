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

/**
 * Mount options, best first. userxattr: the only mode an unprivileged user namespace may use (and
 * it works for root too); without it, removing a lower directory fails with EIO there. index=on
 * keeps hard links whole on copy-up where the kernel can (as root; elsewhere it falls back by
 * itself). volatile: no sync of the whole upper file system at unmount, which otherwise costs
 * whatever the host has dirty (the base just extracted, say) instead of what the step wrote; a
 * step's upper folder is never mounted again, so losing it in a host crash is harmless.
 */
export const OVERLAY_OPTION_SETS = ['userxattr,index=on,volatile', 'userxattr'] as const;

export async function mountOverlay(o: OverlayDirs, tools: HostTools, options: string = OVERLAY_OPTION_SETS[0]): Promise<void> {
  for (const d of [o.upper, o.work, o.merged]) fs.mkdirSync(d, { recursive: true });
  const lowerdir = o.lowers.map((l) => path.relative(o.dir, l) || '.').join(':');
  const all = `${options},lowerdir=${lowerdir},upperdir=upper,workdir=work`;
  const r = await exec(tools.mount!, ['-t', 'overlay', 'overlay', '-o', all, 'merged'], { cwd: o.dir, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`mount -t overlay failed: ${firstLine(r.stderr) || `exit ${r.code}`}`);
}

export async function unmount(target: string, tools: HostTools): Promise<void> {
  const r = await exec(tools.umount!, [target], { timeoutMs: 30_000 });
  if (r.code === 0) return;
  // Something still holds it (a daemon the step left behind in proot mode): detach it lazily.
  const lazy = await exec(tools.umount!, ['-l', target], { timeoutMs: 30_000 });
  if (lazy.code !== 0) throw new Error(`umount ${target} failed: ${firstLine(lazy.stderr || r.stderr)}`);
}

/** The first option set with which overlays work the way this module relies on, or why none does. */
export async function probeOverlay(scratch: string, tools: HostTools): Promise<{ options?: string; why?: string }> {
  if (!tools.mount || !tools.umount) return { why: 'mount/umount not found on PATH' };
  let why = '';
  for (const options of OVERLAY_OPTION_SETS) {
    const problem = await probeWith(path.join(scratch, String(OVERLAY_OPTION_SETS.indexOf(options))), tools, options);
    if (problem === undefined) return { options };
    why = problem;
  }
  return { why };
}

async function probeWith(scratch: string, tools: HostTools, options: string): Promise<string | undefined> {
  fs.mkdirSync(scratch, { recursive: true });
  const lower = path.join(scratch, 'lower');
  fs.mkdirSync(path.join(lower, 'replaced', 'child'), { recursive: true });
  fs.mkdirSync(path.join(lower, 'kept'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'kept', 'f'), 'x');
  const o = overlayDirs(scratch, [lower]);
  try {
    await mountOverlay(o, tools, options);
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
  /** Lower names of a hard-linked file the step changed through another name: link them again when merging. */
  relinks: { from: string; to: string }[];
}

/**
 * The entries for what a step wrote into `o.upper`. Must run while `o.merged` is still mounted
 * (opaque directories are recognised through it). `ownerOf` gives the image owner of a path;
 * `existed` says whether a lower layer had it (and it was not replaced).
 */
export function snapshotUpper(o: OverlayDirs, ownerOf: (rel: string, st: fs.Stats, existed: boolean) => Owner): UpperSnapshot {
  const entries: LayerEntry[] = [];
  const opaque = new Set<string>();
  const copiedUpLinks: { rel: string; entry: LayerEntry; ino: number }[] = [];
  /** `fresh`: inside a directory no lower layer has (or one that replaced a lower one): nothing below is a lower path. */
  const walk = (rel: string, fresh: boolean): void => {
    const dirAbs = rel === '' ? o.upper : path.join(o.upper, rel);
    for (const name of fs.readdirSync(dirAbs)) {
      const childRel = joinRel(rel, name);
      const abs = path.join(dirAbs, name);
      const st = fs.lstatSync(abs);
      if (isWhiteout(st)) {
        entries.push(whiteoutEntry(childRel));
        continue;
      }
      const lower = fresh ? undefined : lowerStat(o, childRel);
      const isOpaque = st.isDirectory() && lower?.isDirectory() === true && fs.lstatSync(path.join(o.merged, childRel)).ino !== lower.ino;
      const entry = entryFromStat(childRel, abs, st, ownerOf(childRel, st, lower !== undefined && !isOpaque));
      if (entry) entries.push(entry);
      // A hard-linked lower file written through this name: overlayfs copied up only this name.
      if (entry && st.isFile() && lower?.isFile() && lower.nlink > 1 && fs.lstatSync(path.join(o.merged, childRel)).ino === lower.ino) {
        copiedUpLinks.push({ rel: childRel, entry, ino: lower.ino });
      }
      if (isOpaque) {
        opaque.add(childRel);
        entries.push(opaqueEntry(childRel));
      }
      if (st.isDirectory()) walk(childRel, fresh || isOpaque || lower === undefined);
    }
  };
  walk('', false);
  const relinks = copiedUpLinks.length > 0 ? relink(o, entries, copiedUpLinks, ownerOf) : [];
  return { entries, opaque, relinks };
}

/** `rel` in the topmost lower layer that has it. */
function lowerStat(o: OverlayDirs, rel: string): fs.Stats | undefined {
  for (const lower of o.lowers) {
    const st = fs.lstatSync(path.join(lower, rel), { throwIfNoEntry: false });
    if (st) return st;
  }
  return undefined;
}

/**
 * overlayfs breaks hard links on copy-up; a plain file system (and the image's next user) would
 * see every name change. Find the other names of those inodes in the lower layers (a walk, paid
 * only when a step writes to a hard-linked file) and add them as links to the new content.
 */
function relink(
  o: OverlayDirs,
  entries: LayerEntry[],
  changed: { rel: string; entry: LayerEntry; ino: number }[],
  ownerOf: (rel: string, st: fs.Stats, existed: boolean) => Owner,
): { from: string; to: string }[] {
  const wanted = new Map(changed.map((c) => [c.ino, c]));
  const inUpper = new Set(entries.map((e) => e.path));
  const relinks: { from: string; to: string }[] = [];
  const seen = new Set<string>();
  for (const lower of o.lowers) {
    const walk = (rel: string): void => {
      for (const d of fs.readdirSync(rel === '' ? lower : path.join(lower, rel), { withFileTypes: true })) {
        const childRel = joinRel(rel, d.name);
        if (d.isDirectory()) walk(childRel);
        else if (d.isFile()) {
          const st = fs.lstatSync(path.join(lower, childRel));
          const c = st.nlink > 1 ? wanted.get(st.ino) : undefined;
          if (!c || childRel === c.rel || seen.has(childRel) || inUpper.has(childRel) || isHiddenByUpper(o, childRel)) continue;
          seen.add(childRel);
          c.entry.linkKey ??= `relink:${c.rel}`;
          entries.push({ ...c.entry, path: childRel, linkKey: c.entry.linkKey });
          relinks.push({ from: c.rel, to: childRel });
          for (let dir = path.posix.dirname(childRel); dir !== '.' && !inUpper.has(dir); dir = path.posix.dirname(dir)) {
            inUpper.add(dir);
            const dirSt = fs.lstatSync(path.join(o.merged, dir));
            const dirEntry = entryFromStat(dir, path.join(o.merged, dir), dirSt, ownerOf(dir, dirSt, true));
            if (dirEntry) entries.push(dirEntry);
          }
        }
      }
    };
    walk('');
  }
  return relinks;
}

/** A lower path the upper hides (a whiteout or opaque directory on its way). */
function isHiddenByUpper(o: OverlayDirs, rel: string): boolean {
  return fs.lstatSync(path.join(o.merged, rel), { throwIfNoEntry: false }) === undefined;
}

/**
 * Move what `upper` holds into `base` (after the overlay is unmounted): whiteouts delete, opaque
 * and new directories move whole, other directories take the upper's metadata and recurse.
 * Renames within one file system: the cost follows what the step wrote.
 */
export function mergeUpper(
  base: string,
  upper: string,
  snap: Pick<UpperSnapshot, 'opaque' | 'relinks'>,
  owners: OwnerTable,
  forget: (rel: string) => void,
): void {
  const { opaque } = snap;
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
      // Anything in the way goes first: rename cannot put a folder over a file (ENOTDIR), nor a
      // file over a folder (EISDIR), and a step may have swapped one for the other.
      if (bst) forceRemove(b);
      fs.renameSync(u, b);
      forget(childRel);
    }
  };
  merge('');
  for (const { from, to } of snap.relinks) {
    fs.rmSync(path.join(base, to), { force: true });
    fs.linkSync(path.join(base, from), path.join(base, to));
  }
}
