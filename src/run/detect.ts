/**
 * Which sandbox can run RUN steps here, and in which namespaces the rootfs worker lives. Every
 * candidate is tried for real (a `true` through it), so the answer reflects this kernel, this
 * user and this PATH, and a refusal can say exactly what failed.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { exec, findProgram, firstLine } from './host.ts';
import type { SandboxKind } from './types.ts';

/**
 * How the worker that owns a rootfs runs. `root`: real root, in a private mount namespace.
 * `userns-full`: a user namespace mapping the caller to root and its /etc/subuid range to 1..n
 * (chown works). `userns-single`: only the caller is mapped, to root (chown to others fails).
 * `plain`: no namespaces at all (proot only).
 */
export type IdMode = 'root' | 'userns-full' | 'userns-single' | 'plain';

export interface HostTools {
  bwrap?: string;
  proot?: string;
  chroot?: string;
  unshare?: string;
  mount?: string;
  umount?: string;
  env?: string;
  sh?: string;
  true?: string;
  ldd?: string;
  mkfifo?: string;
  cp?: string;
  newuidmap?: string;
  newgidmap?: string;
}

export interface SandboxChoice {
  kind: SandboxKind;
  idMode: IdMode;
  /** One line per candidate considered: why it was chosen or why not. */
  reasons: string[];
  tools: HostTools;
  searchPath: string;
}

const TOOL_NAMES: (keyof HostTools)[] = ['bwrap', 'proot', 'chroot', 'unshare', 'mount', 'umount', 'env', 'sh', 'true', 'ldd', 'mkfifo', 'cp', 'newuidmap', 'newgidmap'];

export function findTools(searchPath: string): HostTools {
  const tools: HostTools = {};
  // Setuid helpers and sbin tools live outside an ordinary user's PATH on some systems.
  const extended = `${searchPath}:/usr/sbin:/sbin`;
  for (const name of TOOL_NAMES) {
    const found = findProgram(name, ['chroot', 'newuidmap', 'newgidmap', 'mount', 'umount'].includes(name) ? extended : searchPath);
    if (found) tools[name] = found;
  }
  return tools;
}

/** The caller's first subordinate id range in /etc/subuid or /etc/subgid, if any. */
export function subordinateRange(file: string, user: string, id: number): { start: number; count: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if ((owner === user || owner === String(id)) && Number(count) > 0) return { start: Number(start), count: Number(count) };
  }
  return undefined;
}

interface Probe {
  ok: boolean;
  why: string;
}

async function tryRun(file: string, args: string[]): Promise<Probe> {
  const r = await exec(file, args, { timeoutMs: 15_000 });
  return r.code === 0 ? { ok: true, why: '' } : { ok: false, why: firstLine(r.stderr) || `exit code ${r.code}` };
}

/** The prefix that puts a command into the namespaces of `mode` (empty for root and plain). */
export function namespacePrefix(mode: IdMode, tools: HostTools): string[] {
  if (mode === 'userns-full') return [tools.unshare!, '--user', '--map-root-user', '--map-auto', '--mount', '--propagation', 'private', '--'];
  if (mode === 'userns-single') return [tools.unshare!, '--user', '--map-root-user', '--mount', '--propagation', 'private', '--'];
  if (mode === 'root') return [tools.unshare!, '--mount', '--propagation', 'private', '--'];
  return [];
}

async function detectIdMode(tools: HostTools, reasons: string[]): Promise<IdMode> {
  if (process.getuid?.() === 0) return tools.unshare ? 'root' : 'plain';
  if (!tools.unshare || !tools.true) {
    reasons.push('user namespaces: unshare (util-linux) not found on PATH');
    return 'plain';
  }
  const single = await tryRun(tools.unshare, ['--user', '--map-root-user', tools.true]);
  if (!single.ok) {
    reasons.push(`user namespaces: not allowed here (${single.why})`);
    return 'plain';
  }
  const user = os.userInfo().username;
  const uid = process.getuid!();
  const gid = process.getgid!();
  const subuid = subordinateRange('/etc/subuid', user, uid);
  const subgid = subordinateRange('/etc/subgid', user, gid);
  if (!subuid || !subgid) {
    reasons.push(`user namespaces: only your own id can be mapped (no /etc/subuid and /etc/subgid range for ${user}); chown to other ids will fail`);
    return 'userns-single';
  }
  if (!tools.newuidmap || !tools.newgidmap) {
    reasons.push('user namespaces: newuidmap/newgidmap (package uidmap) not found; chown to other ids will fail');
    return 'userns-single';
  }
  const full = await tryRun(tools.unshare, ['--user', '--map-root-user', '--map-auto', tools.true]);
  if (!full.ok) {
    reasons.push(`user namespaces: mapping your subordinate ids failed (${full.why}); chown to other ids will fail`);
    return 'userns-single';
  }
  return 'userns-full';
}

async function checkKind(kind: SandboxKind, mode: IdMode, tools: HostTools): Promise<Probe> {
  const helperMissing = !tools.env ? 'env (coreutils) not found' : !tools.chroot ? 'chroot (coreutils) not found' : undefined;
  switch (kind) {
    case 'chroot': {
      if (process.getuid?.() !== 0) return { ok: false, why: `needs root (running as uid ${process.getuid?.()})` };
      if (!tools.unshare) return { ok: false, why: 'unshare (util-linux) not found on PATH' };
      if (!tools.mount || !tools.sh) return { ok: false, why: 'mount or sh not found on PATH' };
      if (helperMissing) return { ok: false, why: helperMissing };
      return tryRun(tools.unshare, ['--mount', '--pid', '--fork', '--ipc', '--uts', tools.true ?? 'true']);
    }
    case 'bwrap': {
      if (!tools.bwrap) return { ok: false, why: 'bwrap not found on PATH' };
      if (mode === 'plain') return { ok: false, why: 'needs user namespaces, which are not available' };
      if (helperMissing) return { ok: false, why: helperMissing };
      const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid', tools.true ?? 'true'];
      const prefix = namespacePrefix(mode, tools);
      return prefix.length > 0 ? tryRun(prefix[0]!, [...prefix.slice(1), tools.bwrap, ...args]) : tryRun(tools.bwrap, args);
    }
    case 'proot': {
      if (!tools.proot) return { ok: false, why: 'proot not found on PATH' };
      return tryRun(tools.proot, ['-r', '/', tools.true ?? '/bin/true']);
    }
  }
}

const memo = new Map<string, Promise<SandboxChoice>>();

/** The sandbox to use (the preferred one, or the best that works), with the worker's namespace mode. */
export function chooseSandbox(preferred?: SandboxKind, searchPath: string = process.env.PATH ?? ''): Promise<SandboxChoice> {
  const key = `${preferred ?? ''}\0${searchPath}`;
  let found = memo.get(key);
  if (!found) {
    found = choose(preferred, searchPath);
    memo.set(key, found);
    found.catch(() => memo.delete(key));
  }
  return found;
}

async function choose(preferred: SandboxKind | undefined, searchPath: string): Promise<SandboxChoice> {
  const tools = findTools(searchPath);
  const reasons: string[] = [];
  const idMode = await detectIdMode(tools, reasons);
  const isRoot = process.getuid?.() === 0;
  const order: SandboxKind[] = preferred ? [preferred] : isRoot ? ['chroot', 'bwrap', 'proot'] : ['bwrap', 'proot', 'chroot'];
  const failures: string[] = [];
  for (const kind of order) {
    const probe = await checkKind(kind, idMode, tools);
    if (probe.ok) {
      reasons.unshift(`${kind}: works (${describeMode(kind, idMode)})`);
      return { kind, idMode, reasons: [...failures, ...reasons], tools, searchPath };
    }
    failures.push(`${kind}: ${probe.why}`);
  }
  const tried = failures.join('; ');
  throw new LadingError(
    ERROR_CODES.SANDBOX,
    preferred ? `the ${preferred} sandbox cannot run RUN steps here: ${tried}` : `no sandbox can run RUN steps here (tried ${tried})`,
    {
      hint: preferred
        ? `install or fix ${preferred}, or let lading choose (remove the sandbox setting)`
        : 'install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow unprivileged user namespaces ' +
          '(sysctl user.max_user_namespaces=15000, kernel.unprivileged_userns_clone=1), or install proot; ' +
          'as root, unshare and chroot from util-linux and coreutils are enough',
      details: { tried: failures, notes: reasons },
    },
  );
}

function describeMode(kind: SandboxKind, mode: IdMode): string {
  switch (mode) {
    case 'root':
      return 'as root';
    case 'userns-full':
      return 'rootless: user namespace with your subordinate ids';
    case 'userns-single':
      return 'rootless: user namespace mapping only your id';
    case 'plain':
      return kind === 'proot' ? 'rootless: fake root through ptrace, no namespaces' : 'no namespaces';
  }
}

/** Public form: the sandbox lading would use, and why. Throws LadingError SANDBOX when none works. */
export async function detectSandbox(preferred?: SandboxKind, options: { searchPath?: string } = {}): Promise<{ kind: SandboxKind; reasons: string[] }> {
  const choice = await chooseSandbox(preferred, options.searchPath);
  return { kind: choice.kind, reasons: choice.reasons };
}
