/**
 * Apply one layer (an uncompressed tar stream) to a root folder, as Docker and containerd do:
 * entries in order, `.wh.` whiteouts delete, `.wh..wh..opq` hides what lower layers put in a
 * directory, later entries replace earlier ones. Every path is resolved inside the root first
 * (symlinked parents included), the last component is never followed, and files are created with
 * O_EXCL, so nothing a layer says can write outside the root.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../layer/entry.ts';
import { readTar, type TarEntry } from '../layer/tar-reader.ts';
import type { OwnerTable } from './ownership.ts';
import { RootResolver, joinRel, splitPath } from './safe-path.ts';
import type { AddLayerResult } from './types.ts';

/** Bodies up to this size are read whole and written synchronously; larger ones stream. */
const SMALL_FILE = 1024 * 1024;

export interface ApplyContext {
  resolver: RootResolver;
  owners: OwnerTable;
  /** lchown can set other ids (real root, or a user namespace with subordinate ids). */
  canChown: boolean;
  mkfifo?: string;
  signal?: AbortSignal;
}

export async function applyLayer(ctx: ApplyContext, tarStream: Readable): Promise<AddLayerResult> {
  const applier = new LayerApplier(ctx);
  await readTar(tarStream, (entry, body) => applier.apply(entry, body), { signal: ctx.signal });
  applier.finish();
  return { entries: applier.count, notes: applier.notes() };
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

class LayerApplier {
  count = 0;
  private readonly ctx: ApplyContext;
  private readonly r: RootResolver;
  /** Paths this layer wrote, and every directory above them: an opaque marker keeps those. */
  private readonly written = new Set<string>();
  private readonly containers = new Set<string>(['']);
  /** Directories' final mode and time, applied at the end so that later entries can still be written inside. */
  private readonly dirMeta = new Map<string, { mode: number; mtime: number }>();
  /** Directories made writable for us (a non-root process extracting a 0555 directory), restored at the end. */
  private readonly relaxed = new Map<string, number>();
  private devices: string[] = [];
  private xattrs: string[] = [];
  private unmapped: string[] = [];

  constructor(ctx: ApplyContext) {
    this.ctx = ctx;
    this.r = ctx.resolver;
  }

  async apply(entry: TarEntry, body: Readable): Promise<void> {
    this.count++;
    if (entry.path === '') {
      this.setOwner('', entry);
      this.dirMeta.set('', { mode: entry.mode, mtime: entry.mtime });
      return;
    }
    const [dirRel, base] = splitPath(entry.path);
    if (base === OPAQUE_MARKER) {
      const dir = this.r.ensureDir(dirRel, (made) => this.markWritten(made));
      this.purgeLower(dir);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === '' || name === '.' || name === '..') {
        throw new LadingError(ERROR_CODES.TAR, `whiteout ${JSON.stringify(entry.name)} names no file (it would delete the root or its parent)`);
      }
      const target = joinRel(this.r.resolve(dirRel, true), name);
      this.removeAll(target);
      return;
    }
    const parent = this.r.ensureDir(dirRel, (made) => this.markWritten(made));
    const target = joinRel(parent, base);
    const abs = this.r.abs(target);
    if (entry.xattrs) this.xattrs.push(entry.path);
    switch (entry.type) {
      case 'directory': {
        const st = lstatOrNull(abs);
        if (st && !st.isDirectory()) this.removeAll(target);
        if (!st || !st.isDirectory()) this.writable(parent, () => fs.mkdirSync(abs, { mode: 0o700 }));
        this.r.noteDir(target);
        this.setOwner(target, entry);
        fs.chmodSync(abs, entry.mode | 0o700);
        this.dirMeta.set(target, { mode: entry.mode, mtime: entry.mtime });
        break;
      }
      case 'file': {
        this.removeExisting(target, abs);
        if (entry.size <= SMALL_FILE) {
          // Most files in a layer are small: read the body (bounded) and write it in one go, with
          // no thread-pool round trips (they dominate when extracting tens of thousands of files).
          const chunks: Buffer[] = [];
          for await (const chunk of body) chunks.push(chunk as Buffer);
          this.writable(parent, () => fs.writeFileSync(abs, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), { flag: 'wx', mode: 0o600 }));
        } else {
          const out = this.writable(parent, () => fs.createWriteStream(abs, { flags: 'wx', mode: 0o600 }));
          await pipeline(body, out);
        }
        this.setOwner(target, entry);
        fs.chmodSync(abs, entry.mode);
        fs.utimesSync(abs, entry.mtime, entry.mtime);
        break;
      }
      case 'symlink': {
        this.removeExisting(target, abs);
        this.writable(parent, () => fs.symlinkSync(entry.linkname!, abs));
        this.setOwner(target, entry);
        fs.lutimesSync(abs, entry.mtime, entry.mtime);
        break;
      }
      case 'hardlink': {
        const [linkDir, linkBase] = splitPath(entry.linkname!);
        const source = joinRel(this.r.resolve(linkDir, true), linkBase);
        const st = lstatOrNull(this.r.abs(source));
        if (!st) throw new LadingError(ERROR_CODES.TAR, `hard link ${JSON.stringify(entry.name)} points at ${entry.linkname}, which is not in the layers so far`);
        if (st.isDirectory()) throw new LadingError(ERROR_CODES.TAR, `hard link ${JSON.stringify(entry.name)} points at a directory (${entry.linkname})`);
        if (source === target) break;
        this.removeExisting(target, abs);
        this.writable(parent, () => fs.linkSync(this.r.abs(source), abs));
        const recorded = this.ctx.owners.recorded(source);
        if (recorded) this.ctx.owners.record(target, recorded);
        else this.ctx.owners.forget(target);
        break;
      }
      case 'fifo': {
        this.removeExisting(target, abs);
        await this.mkfifo(abs, entry.mode);
        this.setOwner(target, entry);
        break;
      }
      case 'character-device':
      case 'block-device':
        // Device nodes need CAP_MKNOD in the initial namespace, and RUN steps get the sandbox's own /dev.
        this.devices.push(entry.path);
        return;
    }
    this.markWritten(target);
  }

  finish(): void {
    const byDepth = (a: string, b: string): number => b.split('/').length - a.split('/').length;
    for (const rel of [...this.dirMeta.keys()].sort(byDepth)) {
      const abs = this.r.abs(rel);
      const st = lstatOrNull(abs);
      if (!st?.isDirectory()) continue;
      const meta = this.dirMeta.get(rel)!;
      fs.chmodSync(abs, meta.mode);
      fs.utimesSync(abs, meta.mtime, meta.mtime);
      this.relaxed.delete(rel);
    }
    for (const [rel, mode] of this.relaxed) {
      if (lstatOrNull(this.r.abs(rel))?.isDirectory()) fs.chmodSync(this.r.abs(rel), mode);
    }
  }

  notes(): string[] {
    const out: string[] = [];
    const some = (list: string[]): string => list.slice(0, 3).map((p) => `/${p}`).join(', ') + (list.length > 3 ? ', ...' : '');
    if (this.devices.length > 0) {
      out.push(`skipped ${this.devices.length} device node(s) (${some(this.devices)}): RUN steps get the sandbox's own /dev`);
    }
    if (this.xattrs.length > 0) {
      out.push(`${this.xattrs.length} entr${this.xattrs.length === 1 ? 'y carries' : 'ies carry'} extended attributes (${some(this.xattrs)}) that are not applied to the build root; RUN steps do not see them`);
    }
    if (this.unmapped.length > 0) {
      out.push(`ownership of ${this.unmapped.length} entr${this.unmapped.length === 1 ? 'y' : 'ies'} (${some(this.unmapped)}) cannot be set here and is recorded instead; RUN steps see them owned by root`);
    }
    return out;
  }

  private markWritten(rel: string): void {
    this.written.add(rel);
    let dir = rel;
    while (dir !== '') {
      dir = splitPath(dir)[0];
      if (this.containers.has(dir)) break;
      this.containers.add(dir);
    }
  }

  /** Remove what lower layers put under `dir`, keeping this layer's own entries and their parents. */
  private purgeLower(dir: string): void {
    for (const name of fs.readdirSync(this.r.abs(dir))) {
      const child = joinRel(dir, name);
      if (!this.written.has(child) && !this.containers.has(child)) this.removeAll(child);
      else if (lstatOrNull(this.r.abs(child))?.isDirectory()) this.purgeLower(child);
    }
  }

  private removeExisting(rel: string, abs: string): void {
    const st = lstatOrNull(abs);
    if (!st) return;
    if (st.isDirectory()) this.removeAll(rel);
    else this.writable(splitPath(rel)[0], () => fs.unlinkSync(abs));
    this.ctx.owners.forget(rel);
  }

  private removeAll(rel: string): void {
    const abs = this.r.abs(rel);
    if (lstatOrNull(abs) === null) return;
    this.writable(splitPath(rel)[0], () => forceRemove(abs));
    this.r.forget(rel);
    this.ctx.owners.forgetTree(rel);
  }

  /** Run `op`; when a directory we own refuses it (not root: no CAP_DAC_OVERRIDE), open it up and retry. */
  private writable<T>(dirRel: string, op: () => T): T {
    try {
      return op();
    } catch (err) {
      if (!isPermissionError(err)) throw err;
      const abs = this.r.abs(dirRel);
      const st = fs.lstatSync(abs);
      if (!this.relaxed.has(dirRel) && !this.dirMeta.has(dirRel)) this.relaxed.set(dirRel, st.mode & 0o7777);
      fs.chmodSync(abs, (st.mode & 0o7777) | 0o700);
      return op();
    }
  }

  private setOwner(rel: string, entry: TarEntry): void {
    const owner = { uid: entry.uid, gid: entry.gid };
    if (this.ctx.canChown) {
      try {
        fs.lchownSync(this.r.abs(rel), entry.uid, entry.gid);
        this.ctx.owners.forget(rel);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EINVAL' && code !== 'EPERM') throw err;
        this.unmapped.push(rel);
      }
    }
    this.ctx.owners.record(rel, owner);
  }

  private mkfifo(abs: string, mode: number): Promise<void> {
    const tool = this.ctx.mkfifo;
    if (!tool) throw new LadingError(ERROR_CODES.SANDBOX, 'the layer holds a FIFO and mkfifo (coreutils) is not on PATH');
    return new Promise((resolve, reject) => {
      const child = spawn(tool, ['-m', (mode & 0o7777).toString(8), abs], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new LadingError(ERROR_CODES.SANDBOX, `mkfifo ${abs} failed`))));
    });
  }
}

/** rm -rf that also gets through directories a non-root owner made read-only. */
export function forceRemove(abs: string): void {
  try {
    fs.rmSync(abs, { recursive: true, force: true });
  } catch (err) {
    if (!isPermissionError(err)) throw err;
    openUp(abs);
    fs.rmSync(abs, { recursive: true, force: true });
  }
}

function openUp(abs: string): void {
  const st = lstatOrNull(abs);
  if (!st?.isDirectory()) return;
  try {
    fs.chmodSync(abs, (st.mode & 0o7777) | 0o700);
  } catch {
    return;
  }
  for (const name of fs.readdirSync(abs)) openUp(`${abs}/${name}`);
}
