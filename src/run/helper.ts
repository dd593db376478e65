/**
 * The last hop into a RUN step: set the user (setgroups, setgid, setuid), the working directory
 * and the image's environment, then exec the command. bubblewrap 0.8 cannot switch to another
 * uid inside a namespace that maps many ids, so this is done by the host's coreutils `chroot
 * --skip-chdir --userspec` and `env -i -C`, copied with their shared libraries into a folder the
 * sandbox mounts at /dev/.lading (a tmpfs, so nothing lands in the root) and started through
 * their own dynamic loader, independent of what libc the image has.
 *
 * Host programs run with an empty environment: an image's LD_PRELOAD or locale must not reach
 * them. The image's environment is applied by `env -i` at the very end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { HostTools } from './detect.ts';
import { exec } from './host.ts';

/** Where the sandbox sees the helper folder. */
export const HELPER_MOUNT = '/dev/.lading';

export interface Helper {
  /** The host folder to mount at HELPER_MOUNT. */
  dir: string;
  /** The dynamic loader's file name inside `lib/`, when the programs are dynamic. */
  loader?: string;
  glibc: boolean;
}

/** Parse `ldd` output into the interpreter and the libraries (absolute host paths). */
export function parseLdd(text: string): { interpreter?: string; libraries: string[] } {
  let interpreter: string | undefined;
  const libraries: string[] = [];
  for (const line of text.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow) {
      libraries.push(arrow[1]!);
      continue;
    }
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (bare) interpreter = bare[1]!;
  }
  return { interpreter, libraries };
}

/** Copy chroot and env (and what they link against) into `dir`. */
export async function prepareHelper(dir: string, tools: HostTools): Promise<Helper> {
  if (!tools.chroot || !tools.env) {
    throw new LadingError(ERROR_CODES.SANDBOX, 'chroot and env (coreutils) are needed to start RUN steps and were not found');
  }
  const lib = path.join(dir, 'lib');
  fs.mkdirSync(lib, { recursive: true, mode: 0o755 });
  const programs = { chroot: tools.chroot, env: tools.env };
  let interpreter: string | undefined;
  const libraries = new Set<string>();
  if (tools.ldd) {
    for (const program of Object.values(programs)) {
      const r = await exec(tools.ldd, [program], { timeoutMs: 15_000 });
      if (r.code !== 0) continue; // "not a dynamic executable": static, nothing to add
      const parsed = parseLdd(r.stdout);
      interpreter ??= parsed.interpreter;
      for (const l of parsed.libraries) libraries.add(l);
    }
  }
  for (const [name, source] of Object.entries(programs)) copyReadable(source, path.join(dir, name), 0o755);
  for (const l of libraries) copyReadable(l, path.join(lib, path.basename(l)), 0o755);
  let loader: string | undefined;
  if (interpreter) {
    loader = path.basename(interpreter);
    copyReadable(interpreter, path.join(lib, loader), 0o755);
  }
  fs.chmodSync(dir, 0o755);
  return { dir, loader, glibc: loader !== undefined && loader.startsWith('ld-linux') };
}

function copyReadable(from: string, to: string, mode: number): void {
  fs.copyFileSync(fs.realpathSync(from), to);
  fs.chmodSync(to, mode);
}

/** argv that starts helper program `name` inside the sandbox. */
export function helperCommand(helper: Helper, name: 'chroot' | 'env'): string[] {
  const program = `${HELPER_MOUNT}/${name}`;
  if (!helper.loader) return [program];
  const loader = [`${HELPER_MOUNT}/lib/${helper.loader}`, '--library-path', `${HELPER_MOUNT}/lib`];
  if (helper.glibc) loader.push('--inhibit-cache');
  return [...loader, program];
}

export interface FinalStep {
  /** Switch to uid/gid/groups (needs CAP_SETUID in the sandbox and the ids mapped). */
  user?: { uid: number; gid: number; groups: number[] };
  workdir: string;
  env: string[];
  argv: string[];
}

/** The helper chain for a process already inside the new root. */
export function finalCommand(helper: Helper, step: FinalStep): string[] {
  const envPart = [...helperCommand(helper, 'env'), '-i', '-C', step.workdir, '--', ...step.env, ...step.argv];
  if (!step.user) return envPart;
  const { uid, gid, groups } = step.user;
  return [
    ...helperCommand(helper, 'chroot'),
    '--skip-chdir',
    `--userspec=+${uid}:+${gid}`,
    `--groups=${groups.map((g) => `+${g}`).join(',')}`,
    '/',
    ...envPart,
  ];
}
