/**
 * Running a sandbox process: its output streamed to the caller and its tail kept for errors, its
 * whole process group killed on abort and after exit (so nothing a step started outlives it).
 */
import { spawn } from 'node:child_process';

export interface ProcessResult {
  code: number;
  signal?: string;
  /** The last lines of stdout and stderr together. */
  tail: string;
}

export interface ProcessOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

const TAIL_BYTES = 16 * 1024;
const TAIL_LINES = 30;

export function runProcess(file: string, args: string[], options: ProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    // A group of its own, so that aborting kills every process the step started.
    const child = spawn(file, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let tail = Buffer.alloc(0);
    const keep = (chunk: Buffer): void => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > TAIL_BYTES * 2) tail = tail.subarray(tail.length - TAIL_BYTES);
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      options.onOutput?.(chunk, 'stdout');
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      keep(chunk);
      options.onOutput?.(chunk, 'stderr');
    });
    const killGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => killGroup();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      killGroup();
      if (options.signal?.aborted) {
        reject(options.signal.reason);
        return;
      }
      const text = tail.subarray(Math.max(0, tail.length - TAIL_BYTES)).toString('utf8');
      const lines = text.replace(/\n$/, '').split('\n').slice(-TAIL_LINES).join('\n');
      resolve({ code: code ?? 128 + signalNumber(signal), signal: signal ?? undefined, tail: lines });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };
  return (signal && numbers[signal]) || 0;
}
