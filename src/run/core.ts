/**
 * One stage's root filesystem and its RUN steps, inside the worker process (which holds the
 * namespaces that make mounting and chowning possible). Layout of its folder:
 *
 *   base/       the root: layers applied, earlier steps merged in
 *   helper/     chroot/env and their libraries, mounted at /dev/.lading in sandboxes
 *   runs/N/     one step: stubs/ (mount points as a lower layer), upper/, work/, merged/, etc/
 *
 * A step's upper folder stays until the next addLayer/run/path/dispose (its files are the
 * sources of the entries returned), then is merged into base.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ERROR_CODES, LadingError, throwIfAborted } from '../errors.ts';
import { cleanImagePath, type LayerEntry } from '../layer/entry.ts';
import { decompressLayer } from '../layer/decompress.ts';
import { applyLayer, forceRemove } from './apply-layer.ts';
import type { HostTools, IdMode } from './detect.ts';
import { diffSnapshots, takeSnapshot, type Snapshot } from './diff.ts';
import { prepareHelper, type Helper } from './helper.ts';
import { planMounts, type MountPlan, type Stub } from './mounts.ts';
import { mergeUpper, mountOverlay, overlayDirs, probeOverlay, snapshotUpper, unmount, type OverlayDirs, type UpperSnapshot } from './overlay.ts';
import { OwnerTable, type Owner } from './ownership.ts';
import { runProcess, type ProcessResult } from './process.ts';
import { RootResolver, joinRel, splitPath } from './safe-path.ts';
import { DEV_NODES, sandboxCommand } from './sandbox.ts';
import type { AddLayerResult, RunMount, RunResult, SandboxKind, SnapshotKind } from './types.ts';
import { resolveUser, stepEnv, type ResolvedUser } from './user.ts';

export interface CoreConfig {
  dir: string;
  kind: SandboxKind;
  idMode: IdMode;
  tools: HostTools;
  snapshot?: SnapshotKind;
}

/** RunSpec without what cannot cross a process boundary (the signal and the output callback). */
export interface RunRequest {
  argv: string[];
  env: string[];
  workdir: string;
  user?: string;
  network?: 'default' | 'none' | 'host';
  mounts?: RunMount[];
}

export interface RunHooks {
  signal?: AbortSignal;
  onOutput?(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
}

interface PendingOverlay {
  o: OverlayDirs;
  snap: UpperSnapshot;
}

const HOSTNAME = 'lading';

export class RootfsCore {
  readonly config: CoreConfig;
  readonly base: string;
  private readonly runs: string;
  private readonly resolver: RootResolver;
  private readonly owners: OwnerTable;
  private readonly canChown: boolean;
  private helper!: Helper;
  private snapshotKind: SnapshotKind = 'diff';
  private overlayNote?: string;
  private overlayOptions?: string;
  private pending?: PendingOverlay;
  /** The root as the last diff-mode step left it (reused as the next step's "before"). */
  private lastSnapshot?: Snapshot;
  private broken?: string;
  private runCount = 0;

  private constructor(config: CoreConfig) {
    this.config = config;
    this.base = path.join(config.dir, 'base');
    this.runs = path.join(config.dir, 'runs');
    this.resolver = new RootResolver(this.base);
    this.owners = new OwnerTable(process.getuid!(), process.getgid!());
    // Without namespaces (proot) the worker has the caller's real ids: chown works for root only.
    this.canChown = config.idMode === 'plain' ? process.getuid!() === 0 : config.idMode !== 'userns-single';
  }

  static async open(config: CoreConfig): Promise<RootfsCore> {
    const core = new RootfsCore(config);
    fs.mkdirSync(core.base, { recursive: true, mode: 0o755 });
    fs.chmodSync(core.base, 0o755);
    fs.mkdirSync(core.runs, { recursive: true, mode: 0o700 });
    core.helper = await prepareHelper(path.join(config.dir, 'helper'), config.tools);
    if (config.snapshot === 'diff') {
      core.snapshotKind = 'diff';
    } else if (config.idMode === 'plain') {
      core.overlayNote = 'no overlay without a mount namespace: snapshots walk the root';
      if (config.snapshot === 'overlay') throw new LadingError(ERROR_CODES.SANDBOX, 'overlay snapshots need root or user namespaces');
    } else {
      const { options, why } = await probeOverlay(path.join(config.dir, 'probe'), config.tools);
      if (options !== undefined) {
        core.snapshotKind = 'overlay';
        core.overlayOptions = options;
      } else {
        if (config.snapshot === 'overlay') throw new LadingError(ERROR_CODES.SANDBOX, `overlay snapshots are not available here: ${why}`);
        core.overlayNote = `no overlay (${why}): snapshots walk the root`;
      }
    }
    return core;
  }

  get snapshot(): SnapshotKind {
    return this.snapshotKind;
  }

  async addLayer(tar: Readable, signal?: AbortSignal): Promise<AddLayerResult> {
    this.checkUsable();
    await this.commit();
    this.lastSnapshot = undefined;
    try {
      return await applyLayer(
        { resolver: this.resolver, owners: this.owners, canChown: this.canChown, mkfifo: this.config.tools.mkfifo, signal },
        await decompressLayer(tar),
      );
    } catch (err) {
      this.broken = `a layer failed to apply (${(err as Error).message})`;
      throw err;
    }
  }

  async path(): Promise<string> {
    this.checkUsable();
    await this.commit();
    return this.base;
  }

  async run(req: RunRequest, hooks: RunHooks = {}): Promise<RunResult> {
    this.checkUsable();
    await this.commit();
    throwIfAborted(hooks.signal);
    if (req.argv.length === 0) throw new LadingError(ERROR_CODES.USAGE, 'RUN needs a command');
    const runDir = path.join(this.runs, String(++this.runCount));
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    let keepRunDir = false;
    let plan: MountPlan | undefined;
    try {
      const user = resolveUser(this.resolver, req.user);
      const workdir = `/${cleanImagePath(req.workdir || '/')}`;
      plan = await planMounts({
        resolver: this.resolver,
        runDir,
        mounts: req.mounts ?? [],
        overlay: this.snapshotKind === 'overlay',
        devNodes: this.config.kind === 'proot' ? [...DEV_NODES, 'fd'] : undefined,
        hostname: this.config.kind === 'bwrap' ? HOSTNAME : os.hostname(),
        signal: hooks.signal,
      });
      const notes = [...(this.overlayNote ? [this.overlayNote] : []), ...plan.notes];
      const common = { req, hooks, user, workdir, plan, runDir, notes };
      if (this.snapshotKind === 'overlay') {
        const result = await this.runOverlay(common);
        keepRunDir = true;
        return result;
      }
      return await this.runDiff(common);
    } finally {
      await plan?.release();
      if (!keepRunDir) forceRemove(runDir);
    }
  }

  private async runOverlay(c: StepContext): Promise<RunResult> {
    const stubs = path.join(c.runDir, 'stubs');
    makeStubLayer(this.base, stubs, c.plan.stubs);
    const o = overlayDirs(c.runDir, [stubs, this.base]);
    await mountOverlay(o, this.config.tools, this.overlayOptions);
    let mounted = true;
    try {
      // A missing WORKDIR is created, as Docker does; it belongs to the step's layer.
      new RootResolver(o.merged).ensureDir(cleanImagePath(c.workdir));
      const commandMs = await this.execute(c, o.merged);
      const started = performance.now();
      const snap = snapshotUpper(o, (rel, st, existed) => this.ownerOf(rel, st, existed, c.user));
      await unmount(o.merged, this.config.tools);
      mounted = false;
      this.pending = { o, snap };
      return { entries: snap.entries, sandbox: this.config.kind, snapshot: 'overlay', notes: c.notes, commandMs, snapshotMs: performance.now() - started };
    } finally {
      if (mounted) await unmount(o.merged, this.config.tools).catch(() => undefined);
    }
  }

  private async runDiff(c: StepContext): Promise<RunResult> {
    let started = performance.now();
    const before = this.lastSnapshot ?? takeSnapshot(this.base);
    let snapshotMs = performance.now() - started;
    this.lastSnapshot = undefined;
    const made = createStubs(this.resolver, c.plan.stubs);
    let commandMs: number;
    try {
      this.resolver.ensureDir(cleanImagePath(c.workdir));
      commandMs = await this.execute(c, this.base);
    } catch (err) {
      removeStubs(this.resolver, made);
      // A command that ran may have changed the root before failing, and a diff cannot undo that.
      const code = (err as LadingError).code;
      if (code === ERROR_CODES.RUN_FAILED || code === ERROR_CODES.INTERRUPTED) {
        this.broken = 'a RUN step failed after changing the root in place (no overlay to discard its changes)';
      }
      throw err;
    }
    started = performance.now();
    removeStubs(this.resolver, made);
    const after = takeSnapshot(this.base);
    const entries = diffSnapshots(before, after, {
      ownerOf: (rel, st, existed) => this.ownerOf(rel, st, existed, c.user),
      ignoreTimes: made.parents,
    });
    this.recordOwners(entries);
    this.lastSnapshot = after;
    snapshotMs += performance.now() - started;
    return { entries, sandbox: this.config.kind, snapshot: 'diff', notes: c.notes, commandMs, snapshotMs };
  }

  /** Run the command; throws RUN_FAILED on a non-zero exit. Returns how long it ran. */
  private async execute(c: StepContext, root: string): Promise<number> {
    const cmd = sandboxCommand({
      kind: this.config.kind,
      idMode: this.config.idMode,
      tools: this.config.tools,
      root,
      scratch: c.runDir,
      plan: c.plan,
      helper: this.helper,
      user: c.user,
      workdir: c.workdir,
      env: stepEnv(c.req.env, c.user),
      argv: c.req.argv,
      network: c.req.network ?? 'default',
      hostname: this.config.kind === 'bwrap' ? HOSTNAME : os.hostname(),
    });
    c.notes.push(...cmd.notes);
    const started = performance.now();
    let result: ProcessResult;
    try {
      result = await runProcess(cmd.file, cmd.args, { env: cmd.env, cwd: c.runDir, signal: c.hooks.signal, onOutput: c.hooks.onOutput });
    } catch (err) {
      if (c.hooks.signal?.aborted) throw new LadingError(ERROR_CODES.INTERRUPTED, 'the build was cancelled', { cause: err });
      throw new LadingError(ERROR_CODES.SANDBOX, `cannot start ${this.config.kind}: ${(err as Error).message}`, { cause: err });
    }
    if (result.code !== 0) {
      throw new LadingError(ERROR_CODES.RUN_FAILED, `the command exited with code ${result.code}${result.signal ? ` (${result.signal})` : ''}`, {
        details: { exitCode: result.code, output: result.tail, sandbox: this.config.kind },
        hint: 'the last lines of its output are in the error details',
      });
    }
    return performance.now() - started;
  }

  /**
   * Who owns a changed path in the image. With chown available the disk says; otherwise recorded
   * owners apply to paths that were there before the step, and what a non-root USER step created
   * is credited to that user.
   */
  private ownerOf(rel: string, st: fs.Stats, existed: boolean, user: ResolvedUser): Owner {
    if (existed) return this.owners.imageOwner(rel, st);
    // proot only pretends to be the user; without chown the sandbox could not be the user at all.
    const fakeIds = this.config.kind === 'proot' || !this.canChown;
    if (fakeIds && (user.uid !== 0 || user.gid !== 0) && st.uid === this.owners.selfUid) return { uid: user.uid, gid: user.gid };
    return this.owners.diskOwner(st);
  }

  /** Without chown, the table must learn the owners the step's entries claim. */
  private recordOwners(entries: LayerEntry[]): void {
    if (this.canChown) return;
    for (const e of entries) {
      const [dir, name] = splitPath(e.path);
      if (name === '.wh..wh..opq') this.owners.forgetTree(dir);
      else if (name.startsWith('.wh.')) this.owners.forgetTree(joinRel(dir, name.slice(4)));
    }
    for (const e of entries) if (!splitPath(e.path)[1].startsWith('.wh.')) this.owners.record(e.path, e);
  }

  /** Fold the last overlay step into base. */
  private async commit(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    try {
      mergeUpper(this.base, p.o.upper, p.snap, this.owners, (rel) => this.resolver.forget(rel));
      this.recordOwners(p.snap.entries);
    } catch (err) {
      this.broken = `merging a step into the root failed (${(err as Error).message})`;
      throw err;
    } finally {
      forceRemove(p.o.dir);
    }
  }

  private checkUsable(): void {
    if (this.broken) {
      throw new LadingError(ERROR_CODES.INTERNAL, `this root filesystem cannot be used any more: ${this.broken}`, {
        hint: 'start the stage again from a new Rootfs',
      });
    }
  }

  async dispose(): Promise<void> {
    this.pending = undefined;
    forceRemove(this.config.dir);
  }
}

interface StepContext {
  req: RunRequest;
  hooks: RunHooks;
  user: ResolvedUser;
  workdir: string;
  plan: MountPlan;
  runDir: string;
  notes: string[];
}

/**
 * A lower layer holding only the mount points the root lacks. Directories on the way copy the
 * root's metadata, so the merged view shows the root unchanged and nothing is copied up.
 */
function makeStubLayer(base: string, stubs: string, list: Stub[]): void {
  fs.mkdirSync(stubs, { recursive: true });
  fs.chmodSync(stubs, fs.statSync(base).mode & 0o7777);
  for (const stub of list) {
    const parts = stub.rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      const dst = path.join(stubs, rel);
      if (fs.existsSync(dst)) continue;
      fs.mkdirSync(dst);
      const st = fs.lstatSync(path.join(base, rel), { throwIfNoEntry: false });
      if (st?.isDirectory()) copyMeta(dst, st);
      else fs.chmodSync(dst, 0o755);
    }
    const dst = path.join(stubs, stub.rel);
    if (stub.file) fs.writeFileSync(dst, '', { mode: 0o644 });
    else fs.mkdirSync(dst, { mode: 0o755 });
  }
}

function copyMeta(dst: string, st: fs.Stats): void {
  try {
    fs.lchownSync(dst, st.uid, st.gid);
  } catch {
    // without chown the stub stays ours; ownerOf maps that back through the owner table
  }
  fs.chmodSync(dst, st.mode & 0o7777);
  fs.utimesSync(dst, st.atime, st.mtime);
}

interface MadeStubs {
  /** Created paths, parents first. */
  created: string[];
  /** Existing directories that got a stub inside (their times move; the diff ignores that). */
  parents: Set<string>;
}

function createStubs(resolver: RootResolver, list: Stub[]): MadeStubs {
  const made: MadeStubs = { created: [], parents: new Set() };
  for (const stub of list) {
    const [dir] = splitPath(stub.rel);
    const firstNew = made.created.length;
    resolver.ensureDir(dir, (rel) => made.created.push(rel));
    made.parents.add(made.created.length > firstNew ? splitPath(made.created[firstNew]!)[0] : dir);
    const abs = resolver.abs(stub.rel);
    if (stub.file) fs.writeFileSync(abs, '', { flag: 'wx', mode: 0o644 });
    else fs.mkdirSync(abs, { mode: 0o755 });
    made.created.push(stub.rel);
  }
  return made;
}

/** Remove stubs (children first); a directory the step filled stays, since it is now real content. */
function removeStubs(resolver: RootResolver, made: MadeStubs): void {
  for (const rel of [...made.created].reverse()) {
    const abs = resolver.abs(rel);
    try {
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) fs.rmdirSync(abs);
      else if (st.size === 0) fs.unlinkSync(abs);
      resolver.forget(rel);
    } catch {
      // not empty, or already gone: the step made it its own
    }
  }
}
