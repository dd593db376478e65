/**
 * What a RUN step sees besides the root: /proc, /dev, /sys, /etc/resolv.conf and /etc/hosts as
 * Docker provides them, and the step's `--mount`s (cache, bind, secret, tmpfs). Targets are
 * resolved inside the root; the ones that do not exist become stubs that never reach a layer.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ERROR_CODES, LadingError, fsError, throwIfAborted } from '../errors.ts';
import { cleanImagePath } from '../layer/entry.ts';
import { forceRemove } from './apply-layer.ts';
import { RootResolver } from './safe-path.ts';
import type { RunMount } from './types.ts';

export interface PlannedMount {
  /** Resolved path inside the root, relative. */
  target: string;
  kind: 'bind' | 'tmpfs';
  /** Host path for binds. */
  source?: string;
  readonly?: boolean;
  /** The mount point is a file. */
  file?: boolean;
  size?: number;
  /** A writable bind whose writes are thrown away: an overlay of `lower` mounted at `source` first. */
  throwaway?: { lower: string; upper: string; work: string };
}

export interface Stub {
  rel: string;
  file: boolean;
}

export interface MountPlan {
  proc: string;
  dev: string;
  /** Present when the image has a /sys directory. */
  sys?: string;
  resolvConf: { target: string; source: string };
  hosts: { target: string; source: string };
  mounts: PlannedMount[];
  stubs: Stub[];
  notes: string[];
  /** Unlock caches and remove per-step copies (secrets first of all). Safe to call twice. */
  release(): Promise<void>;
}

export interface PlanOptions {
  resolver: RootResolver;
  runDir: string;
  mounts: RunMount[];
  /** Writable binds can go through an overlay (else they are copied). */
  overlay: boolean;
  /** The sandbox binds device nodes one by one into the root's /dev (proot), so they need mount points. */
  devNodes?: readonly string[];
  hostname: string;
  signal?: AbortSignal;
}

function usage(message: string, hint?: string): LadingError {
  return new LadingError(ERROR_CODES.USAGE, message, { hint });
}

export async function planMounts(options: PlanOptions): Promise<MountPlan> {
  const { resolver, runDir } = options;
  const stubs: Stub[] = [];
  const notes: string[] = [];
  const cleanups: (() => void)[] = [];
  const taken = new Set<string>();
  const place = (target: string, file: boolean, what: string): string => {
    const rel = resolver.resolve(cleanImagePath(target), true);
    if (rel === '') throw usage(`${what}: cannot mount over the root directory`);
    if (taken.has(rel)) throw usage(`${what}: /${rel} is already a mount target of this step`);
    taken.add(rel);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(resolver.abs(rel));
    } catch {
      st = undefined;
    }
    if (!st) stubs.push({ rel, file });
    else if (file && st.isDirectory()) throw usage(`${what}: /${rel} is a directory, but the mount is a file`);
    else if (!file && !st.isDirectory()) throw usage(`${what}: /${rel} exists and is not a directory`);
    return rel;
  };

  const plan: MountPlan = {
    proc: place('/proc', false, '/proc'),
    dev: place('/dev', false, '/dev'),
    resolvConf: { target: '', source: '' },
    hosts: { target: '', source: '' },
    mounts: [],
    stubs,
    notes,
    release: async () => {
      for (const fn of cleanups.splice(0).reverse()) {
        try {
          fn();
        } catch {
          // best effort: the run folder is removed as a whole later
        }
      }
    },
  };
  try {
    for (const n of options.devNodes ?? []) place(`/${plan.dev}/${n}`, n !== 'fd', `/dev/${n}`);
    if (fs.lstatSync(resolver.abs('sys'), { throwIfNoEntry: false })?.isDirectory()) plan.sys = place('/sys', false, '/sys');
    const etc = path.join(runDir, 'etc');
    fs.mkdirSync(etc, { recursive: true });
    const resolv = path.join(etc, 'resolv.conf');
    fs.writeFileSync(resolv, hostResolvConf());
    const hosts = path.join(etc, 'hosts');
    fs.writeFileSync(hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${options.hostname}\n`);
    plan.resolvConf = { target: place('/etc/resolv.conf', true, '/etc/resolv.conf'), source: resolv };
    plan.hosts = { target: place('/etc/hosts', true, '/etc/hosts'), source: hosts };

    let n = 0;
    for (const m of options.mounts) {
      throwIfAborted(options.signal);
      const scratch = path.join(runDir, `mount-${n++}`);
      switch (m.type) {
        case 'cache':
          plan.mounts.push(await cacheMount(m, place(m.target, false, `cache mount ${m.target}`), scratch, cleanups, notes, options.signal));
          break;
        case 'bind':
          plan.mounts.push(bindMount(m, place, scratch, cleanups, options.overlay));
          break;
        case 'secret': {
          if (!m.id) throw usage('a secret mount needs an id');
          const target = place(m.target ?? `/run/secrets/${m.id}`, true, `secret ${m.id}`);
          fs.mkdirSync(scratch, { recursive: true, mode: 0o700 });
          const copy = path.join(scratch, 'secret');
          try {
            fs.copyFileSync(m.file, copy);
          } catch (err) {
            throw fsError(ERROR_CODES.USAGE, 'read secret file', m.file, err);
          }
          cleanups.push(() => forceRemove(scratch));
          fs.chmodSync(copy, m.mode ?? 0o400);
          tryChown(copy, m.uid ?? 0, m.gid ?? 0);
          plan.mounts.push({ target, kind: 'bind', source: copy, readonly: true, file: true });
          break;
        }
        case 'tmpfs':
          plan.mounts.push({ target: place(m.target, false, `tmpfs mount ${m.target}`), kind: 'tmpfs', size: m.size });
          break;
        default:
          throw usage(`unknown mount type ${(m as { type: string }).type}`);
      }
    }
  } catch (err) {
    await plan.release();
    throw err;
  }
  // Mount parents before children (a bind inside a tmpfs, say).
  plan.mounts.sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  return plan;
}

function hostResolvConf(): string {
  try {
    return fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

function tryChown(p: string, uid: number, gid: number): void {
  try {
    fs.lchownSync(p, uid, gid);
  } catch {
    // rootless without subordinate ids: the file stays ours, which the sandbox shows as root
  }
}

function bindMount(
  m: Extract<RunMount, { type: 'bind' }>,
  place: (target: string, file: boolean, what: string) => string,
  scratch: string,
  cleanups: (() => void)[],
  overlay: boolean,
): PlannedMount {
  let fromSt: fs.Stats;
  try {
    fromSt = fs.statSync(m.from);
  } catch (err) {
    throw fsError(ERROR_CODES.USAGE, 'use bind mount source', m.from, err);
  }
  let source = m.from;
  if (fromSt.isDirectory()) {
    const inside = new RootResolver(m.from);
    source = inside.abs(inside.resolve(cleanImagePath(m.source ?? ''), true));
  } else if (m.source && cleanImagePath(m.source) !== '') {
    throw usage(`bind mount: ${m.from} is a file, so source=${m.source} cannot be inside it`);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (err) {
    throw fsError(ERROR_CODES.USAGE, 'find bind mount source', `${m.source ?? '/'} in ${m.from}`, err);
  }
  const file = !st.isDirectory();
  const target = place(m.target, file, `bind mount ${m.target}`);
  if (!m.rw) return { target, kind: 'bind', source, readonly: true, file };
  fs.mkdirSync(scratch, { recursive: true });
  cleanups.push(() => forceRemove(scratch));
  if (!file && overlay) {
    const merged = path.join(scratch, 'merged');
    for (const d of ['upper', 'work', 'merged']) fs.mkdirSync(path.join(scratch, d));
    return { target, kind: 'bind', source: merged, file, throwaway: { lower: source, upper: path.join(scratch, 'upper'), work: path.join(scratch, 'work') } };
  }
  // No overlay: writes go to a copy that is thrown away.
  const copy = path.join(scratch, 'copy');
  fs.cpSync(source, copy, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  return { target, kind: 'bind', source: copy, file };
}

async function cacheMount(
  m: Extract<RunMount, { type: 'cache' }>,
  target: string,
  scratch: string,
  cleanups: (() => void)[],
  notes: string[],
  signal: AbortSignal | undefined,
): Promise<PlannedMount> {
  const id = m.id || `/${target}`;
  const key = createHash('sha256').update(id).digest('hex').slice(0, 32);
  fs.mkdirSync(m.cacheRoot, { recursive: true });
  let dir = path.join(m.cacheRoot, key);
  const sharing = m.sharing ?? 'shared';
  if (sharing !== 'shared') {
    const release = await acquireLock(`${dir}.lock`, sharing === 'locked', signal);
    if (release) cleanups.push(release);
    else {
      // private and busy: this step gets a folder of its own, dropped afterwards.
      dir = path.join(scratch, 'private-cache');
      cleanups.push(() => forceRemove(scratch));
      notes.push(`cache ${id} is in use elsewhere; this step got a fresh private one`);
    }
  }
  if (!fs.existsSync(dir)) {
    const tmp = `${dir}.${randomBytes(6).toString('hex')}.tmp`;
    fs.mkdirSync(tmp, { recursive: true });
    fs.chmodSync(tmp, m.mode ?? 0o755);
    tryChown(tmp, m.uid ?? 0, m.gid ?? 0);
    try {
      fs.renameSync(tmp, dir);
    } catch {
      forceRemove(tmp); // another step made it first
    }
  }
  return { target, kind: 'bind', source: dir, readonly: m.readonly === true };
}

/** An exclusive lock file holding our pid; stale locks of dead processes are taken over. */
async function acquireLock(file: string, wait: boolean, signal: AbortSignal | undefined): Promise<(() => void) | undefined> {
  for (;;) {
    try {
      fs.writeFileSync(file, `${process.pid}@${os.hostname()}`, { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = '';
    try {
      holder = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const [pid, host] = holder.split('@');
    if (host === os.hostname() && !isAlive(Number(pid))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!wait) return undefined;
    throwIfAborted(signal);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
