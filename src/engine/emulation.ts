/**
 * RUN for a foreign architecture needs the kernel to run its binaries: binfmt_misc handlers
 * (qemu-user-static) registered on the host. Checked before any work starts, so a build that
 * cannot finish fails in its first second, naming the step.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { BuildGraph } from '../graph/types.ts';
import { parsePlatform, platformToString } from '../image/platform.ts';
import type { Platform } from '../image/types.ts';

const QEMU_NAMES: Record<string, string[]> = {
  amd64: ['x86_64'],
  arm64: ['aarch64'],
  arm: ['arm'],
  '386': ['i386', 'i486'],
  ppc64le: ['ppc64le'],
  s390x: ['s390x'],
  riscv64: ['riscv64'],
  mips64le: ['mips64el'],
  loong64: ['loongarch64'],
};

/** Whether binfmt_misc can run `architecture` binaries here (through qemu or any handler for it). */
export function canEmulate(architecture: string, binfmtDir = '/proc/sys/fs/binfmt_misc'): boolean {
  let names: string[];
  try {
    names = readdirSync(binfmtDir);
  } catch {
    return false;
  }
  const wanted = QEMU_NAMES[architecture] ?? [architecture];
  for (const name of names) {
    if (!wanted.some((w) => name === `qemu-${w}` || name.endsWith(`-${w}`) || name === w)) continue;
    try {
      if (readFileSync(`${binfmtDir}/${name}`, 'utf8').startsWith('enabled')) return true;
    } catch {
      // not readable: not usable
    }
  }
  return false;
}

/**
 * The first RUN the target needs that would execute foreign binaries with no handler to run them,
 * as an error; nothing when every RUN can run.
 */
export function checkEmulation(graph: BuildGraph, target: Platform, host: Platform, binfmtDir?: string): void {
  for (const index of graph.order) {
    const node = graph.stages[index]!;
    const run = node.stage.commands.find((c) => c.kind === 'run');
    if (!run) continue;
    let stagePlatform = target;
    if (node.platform) {
      try {
        stagePlatform = parsePlatform(node.platform);
      } catch {
        continue; // reported where the stage is built
      }
    }
    if (stagePlatform.architecture === host.architecture) continue;
    if (canEmulate(stagePlatform.architecture, binfmtDir)) continue;
    throw new LadingError(
      ERROR_CODES.SANDBOX,
      `RUN in stage ${node.stage.name ?? index} must run ${platformToString(stagePlatform)} programs, and this ${platformToString(host)} machine cannot`,
      {
        location: run.location,
        hint: `register qemu-user emulation (e.g. apt-get install qemu-user-static binfmt-support), or build that stage with FROM --platform=$BUILDPLATFORM and cross-compile; builds without RUN need nothing`,
      },
    );
  }
}
