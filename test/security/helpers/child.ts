/** Spawning the build child and reading its JSON outcome. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from '../../../src/index.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface ChildOutcome {
  ok: boolean;
  digest?: string;
  lading?: boolean;
  code?: string;
  message?: string;
  maxRssKiB: number;
  stderr: string;
}

/**
 * Run `build(options)` in a fresh Node process (so its peak RSS is the build's alone), optionally
 * under a wrapper command (e.g. `setpriv --reuid=...` to run as another user).
 */
export function buildInChild(options: BuildOptions, env: NodeJS.ProcessEnv = {}, wrapper: string[] = []): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, '--import', 'tsx', path.join(HERE, 'build-child.ts'), JSON.stringify(options)];
    const [cmd, ...args] = [...wrapper, ...argv];
    const child = spawn(cmd!, args, {
      cwd: path.resolve(HERE, '../../..'),
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve({ ...(JSON.parse(line) as Omit<ChildOutcome, 'stderr'>), stderr });
      } catch {
        reject(new Error(`build child exited ${code} without an outcome:\n${stdout}\n${stderr}`));
      }
    });
  });
}
