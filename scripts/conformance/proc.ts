/** Run an outside program to completion and keep what it printed: every tool the harness drives goes through here. */
import { spawn } from 'node:child_process';

export interface ProcResult {
  code: number;
  /** The signal that ended the program, if one did. */
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface ProcOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the program after this many milliseconds (default 10 minutes). */
  timeoutMs?: number;
  /** Kill the program when this aborts (an interrupted run). */
  signal?: AbortSignal;
}

export function runProc(cmd: string, args: string[], options: ProcOptions = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 10 * 60 * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), signal: signal ?? undefined, stdout, stderr });
    });
  });
}

/** Like runProc, but a non-zero exit is an error carrying what the program said. */
export async function mustRun(cmd: string, args: string[], options: ProcOptions = {}): Promise<string> {
  const r = await runProc(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}:\n${(r.stderr || r.stdout).trim()}`);
  }
  return r.stdout;
}
