/**
 * Installing a missing Debian package for a suite, only where that is expected to be quick and
 * allowed: as root in CI (or when LADING_TEST_APT=1). Elsewhere the suite skips loudly through
 * testNeeding. CI's .ci/run should list these packages so this never has to run.
 */
import { execFileSync } from 'node:child_process';
import { IN_CI } from '../../helpers/tools.ts';

function present(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${JSON.stringify(tool)}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureDebianTool(tool: string, debianPackage: string): void {
  if (present(tool)) return;
  const allowed = IN_CI || process.env.LADING_TEST_APT === '1';
  if (!allowed || process.getuid?.() !== 0) return;
  try {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debianPackage], {
      stdio: 'ignore',
      timeout: 5 * 60 * 1000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch {
    // testNeeding reports the tool as missing.
  }
}
