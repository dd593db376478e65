/**
 * The command line that runs one step in each sandbox. Pure: it only builds argv (and the small
 * shell script that sets up mounts for chroot); the caller runs it.
 *
 * - bwrap: pivot_root into the root with its own pid, ipc and uts namespaces; the worker's user
 *   namespace (or real root) gives it the privileges; capabilities cut to Docker's default set.
 * - chroot (root only): unshare for the namespaces, a script for /dev and the binds, coreutils
 *   chroot with --userspec.
 * - proot: ptrace-based fake root; never `-R`, which binds host folders into the guest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { HostTools, IdMode } from './detect.ts';
import { HELPER_MOUNT, finalCommand, helperCommand, type Helper } from './helper.ts';
import { hostEnv, shQuote } from './host.ts';
import type { MountPlan, PlannedMount } from './mounts.ts';
import type { SandboxKind } from './types.ts';
import type { ResolvedUser } from './user.ts';

export interface SandboxInput {
  kind: SandboxKind;
  idMode: IdMode;
  tools: HostTools;
  /** Host path of the root the step runs in. */
  root: string;
  /** A folder for per-step scratch (proot's stand-ins for tmpfs). */
  scratch: string;
  plan: MountPlan;
  helper: Helper;
  user: ResolvedUser;
  workdir: string;
  env: string[];
  argv: string[];
  network: 'default' | 'none' | 'host';
  hostname: string;
}

export interface SandboxCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  notes: string[];
}

/** Docker's default capability set: enough for package managers, chown and setuid helpers. */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Device nodes a step gets, as in Docker (plus fd, stdin... as links to /proc). */
export const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

const inRoot = (rel: string): string => `/${rel}`;

export function sandboxCommand(input: SandboxInput): SandboxCommand {
  switch (input.kind) {
    case 'bwrap':
      return bwrapCommand(input);
    case 'chroot':
      return chrootCommand(input);
    case 'proot':
      return prootCommand(input);
  }
}

/** Overlays for writable binds must exist before the sandbox starts: mount them in a private namespace. */
function withThrowawayOverlays(input: SandboxInput, file: string, args: string[]): { file: string; args: string[] } {
  const overlays = input.plan.mounts.filter((m) => m.throwaway);
  if (overlays.length === 0) return { file, args };
  const { tools } = input;
  const lines = ['set -e', ...overlays.map(throwawayMount(tools)), 'exec "$@"'];
  return {
    file: tools.unshare!,
    args: ['--mount', '--propagation', 'private', '--', tools.sh!, '-c', lines.join('\n'), 'sh', file, ...args],
  };
}

function throwawayMount(tools: HostTools): (m: PlannedMount) => string {
  return (m) => {
    const t = m.throwaway!;
    return `${shQuote(tools.mount!)} -t overlay overlay -o ${shQuote(`userxattr,lowerdir=${escapeOverlayPath(t.lower)},upperdir=${escapeOverlayPath(t.upper)},workdir=${escapeOverlayPath(t.work)}`)} ${shQuote(m.source!)}`;
  };
}

function escapeOverlayPath(p: string): string {
  return p.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/:/g, '\\:');
}

function bwrapCommand(input: SandboxInput): SandboxCommand {
  const { plan, tools, user } = input;
  const notes: string[] = [];
  const args = ['--bind', input.root, '/', '--dev', inRoot(plan.dev), '--proc', inRoot(plan.proc)];
  if (plan.sys) args.push('--ro-bind', '/sys', inRoot(plan.sys));
  args.push('--ro-bind', input.helper.dir, path.posix.join(inRoot(plan.dev), '.lading'));
  args.push('--bind', plan.resolvConf.source, inRoot(plan.resolvConf.target), '--bind', plan.hosts.source, inRoot(plan.hosts.target));
  for (const m of plan.mounts) {
    if (m.kind === 'tmpfs') {
      if (m.size !== undefined) args.push('--size', String(m.size));
      args.push('--tmpfs', inRoot(m.target));
    } else args.push(m.readonly ? '--ro-bind' : '--bind', m.source!, inRoot(m.target));
  }
  args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--hostname', input.hostname);
  if (input.network === 'none') args.push('--unshare-net');
  args.push('--die-with-parent', '--new-session');
  const step = { workdir: input.workdir, env: input.env, argv: input.argv };
  let final: string[];
  if (input.idMode === 'userns-single' && (user.uid !== 0 || user.gid !== 0)) {
    // Only our own id is mapped: a nested namespace maps it to the user, so the step runs as that
    // uid, but every file it did not create shows up as owned by it too.
    args.push('--unshare-user', '--uid', String(user.uid), '--gid', String(user.gid));
    notes.push(`USER ${user.uid}:${user.gid} is approximated: without subordinate ids the step sees files it did not create as its own`);
    final = finalCommand(input.helper, step);
  } else {
    args.push('--cap-drop', 'ALL', ...DEFAULT_CAPS.flatMap((c) => ['--cap-add', c]));
    final = input.idMode === 'userns-single' ? finalCommand(input.helper, step) : finalCommand(input.helper, { ...step, user });
  }
  if (plan.dev !== 'dev') final = final.map((a) => a.replace(HELPER_MOUNT, path.posix.join(inRoot(plan.dev), '.lading')));
  args.push('--chdir', '/', '--clearenv', '--setenv', 'PATH', '/usr/sbin:/usr/bin:/sbin:/bin', '--', ...final);
  const wrapped = withThrowawayOverlays(input, tools.bwrap!, args);
  return { ...wrapped, env: hostEnv(), notes };
}

function chrootCommand(input: SandboxInput): SandboxCommand {
  const { plan, tools, root, user } = input;
  const at = (rel: string): string => shQuote(path.join(root, rel));
  const dev = path.join(root, plan.dev);
  const mount = shQuote(tools.mount!);
  const lines = ['set -e', `${mount} -t tmpfs -o mode=755,nosuid,size=65536k tmpfs ${shQuote(dev)}`];
  for (const n of DEV_NODES) lines.push(`: > ${shQuote(`${dev}/${n}`)}`, `${mount} --bind /dev/${n} ${shQuote(`${dev}/${n}`)}`);
  lines.push(
    `ln -s /proc/self/fd ${shQuote(`${dev}/fd`)}`,
    ...['stdin', 'stdout', 'stderr'].map((n, i) => `ln -s /proc/self/fd/${i} ${shQuote(`${dev}/${n}`)}`),
    `mkdir ${shQuote(`${dev}/pts`)} ${shQuote(`${dev}/shm`)} ${shQuote(`${dev}/.lading`)}`,
    `${mount} -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts ${shQuote(`${dev}/pts`)} && ln -s pts/ptmx ${shQuote(`${dev}/ptmx`)} || true`,
    `${mount} -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${shQuote(`${dev}/shm`)}`,
    `${mount} --bind ${shQuote(input.helper.dir)} ${shQuote(`${dev}/.lading`)}`,
    `${mount} -o remount,bind,ro ${shQuote(`${dev}/.lading`)}`,
  );
  if (plan.sys) lines.push(`${mount} --rbind /sys ${at(plan.sys)}`, `${mount} -o remount,bind,ro ${at(plan.sys)}`);
  lines.push(`${mount} --bind ${shQuote(plan.resolvConf.source)} ${at(plan.resolvConf.target)}`);
  lines.push(`${mount} --bind ${shQuote(plan.hosts.source)} ${at(plan.hosts.target)}`);
  for (const m of plan.mounts) {
    if (m.throwaway) lines.push(throwawayMount(tools)(m));
    if (m.kind === 'tmpfs') {
      lines.push(`${mount} -t tmpfs -o ${m.size !== undefined ? `size=${m.size},` : ''}mode=1777 tmpfs ${at(m.target)}`);
    } else {
      // A target inside /dev (a #! RUN heredoc at /dev/pipes/NAME) lives on the fresh /dev tmpfs,
      // which hid the mount point made in the root: make it there.
      if (m.target === plan.dev || m.target.startsWith(`${plan.dev}/`)) {
        lines.push(fs.statSync(m.source!).isDirectory() ? `mkdir -p ${at(m.target)}` : `mkdir -p ${shQuote(path.dirname(path.join(root, m.target)))} && : > ${at(m.target)}`);
      }
      lines.push(`${mount} --bind ${shQuote(m.source!)} ${at(m.target)}`);
      if (m.readonly) lines.push(`${mount} -o remount,bind,ro ${at(m.target)}`);
    }
  }
  lines.push('exec "$@"');
  const inner = [...helperCommand(input.helper, 'env'), '-i', '-C', input.workdir, '--', ...input.env, ...input.argv].map((a) =>
    a.replace(HELPER_MOUNT, path.posix.join(inRoot(plan.dev), '.lading')),
  );
  const chroot = [tools.chroot!, `--userspec=+${user.uid}:+${user.gid}`, `--groups=${user.groups.map((g) => `+${g}`).join(',')}`, root, ...inner];
  const args = ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--ipc', '--uts'];
  if (input.network === 'none') args.push('--net');
  args.push(`--mount-proc=${path.join(root, plan.proc)}`, '--', tools.sh!, '-c', lines.join('\n'), 'sh', ...chroot);
  return { file: tools.unshare!, args, env: hostEnv(), notes: [] };
}

function prootCommand(input: SandboxInput): SandboxCommand {
  const { plan, tools, user } = input;
  const notes: string[] = [];
  if (input.network === 'none' && input.idMode === 'plain') {
    throw new LadingError(ERROR_CODES.SANDBOX, 'RUN --network=none needs a network namespace, which proot cannot make without user namespaces', {
      hint: 'run the build as root, enable unprivileged user namespaces, or drop --network=none',
    });
  }
  const args = user.uid === 0 && user.gid === 0 ? ['-0'] : ['-i', `${user.uid}:${user.gid}`];
  args.push('-r', input.root, '-w', input.workdir, '-b', `/proc:${inRoot(plan.proc)}`);
  for (const n of DEV_NODES) args.push('-b', `/dev/${n}:${inRoot(plan.dev)}/${n}`);
  args.push('-b', `/proc/self/fd:${inRoot(plan.dev)}/fd`);
  if (plan.sys) args.push('-b', `/sys:${inRoot(plan.sys)}`);
  args.push('-b', `${plan.resolvConf.source}:${inRoot(plan.resolvConf.target)}`, '-b', `${plan.hosts.source}:${inRoot(plan.hosts.target)}`);
  let tmp = 0;
  for (const m of plan.mounts) {
    let source = m.source!;
    if (m.kind === 'tmpfs') {
      source = path.join(input.scratch, `tmpfs-${tmp++}`);
      fs.mkdirSync(source, { recursive: true, mode: 0o1777 });
    }
    if (m.readonly) notes.push(`proot cannot make /${m.target} read-only; the step could write to it`);
    args.push('-b', `${source}:${inRoot(m.target)}`);
  }
  args.push(...input.argv);
  const env: NodeJS.ProcessEnv = {};
  for (const kv of input.env) {
    const eq = kv.indexOf('=');
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (input.user.groups.length > 1) notes.push('proot does not apply supplementary groups');
  let file = tools.proot!;
  if (input.network === 'none') {
    args.unshift('--net', '--', file);
    file = tools.unshare!;
  }
  const wrapped = withThrowawayOverlays(input, file, args);
  return { ...wrapped, env, notes };
}
