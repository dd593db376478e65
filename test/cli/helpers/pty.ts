/**
 * Run the real CLI in a pseudo-terminal (util-linux `script`) and replay what it wrote through a
 * headless terminal emulator (@xterm/headless), to see the screen a person would see.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import xterm from '@xterm/headless';
import { REPO_ROOT } from '../../helpers/busybox.ts';

export interface PtyRun {
  code: number;
  /** Every byte the terminal received (stdout and stderr together, as on a real terminal). */
  raw: string;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * `lading ARGS` on a COLS×ROWS terminal. `onOutput` sees the output so far and may type into the
 * terminal (e.g. Ctrl-C as `\x03`).
 */
export function runInPty(
  args: string[],
  options: { cols?: number; rows?: number; env?: NodeJS.ProcessEnv; cwd?: string; onOutput?: (raw: string, type: (keys: string) => void) => void } = {},
): Promise<PtyRun> {
  const command = `stty cols ${options.cols ?? 100} rows ${options.rows ?? 30}; exec ${quote(process.execPath)} ${quote(path.join(REPO_ROOT, 'bin', 'lading'))} ${args.map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...options.env };
    delete env.NO_COLOR;
    if (options.env?.NO_COLOR !== undefined) env.NO_COLOR = options.env.NO_COLOR;
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { cwd: options.cwd ?? REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    child.stdout.on('data', (d: Buffer) => {
      raw += d.toString();
      options.onOutput?.(raw, (keys) => child.stdin.write(keys));
    });
    child.stderr.on('data', (d: Buffer) => (raw += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, raw }));
  });
}

export interface Screen {
  /** Every line, scrollback included, without trailing blanks. */
  lines: string[];
  synchronizedOutput: boolean;
}

/** What a terminal of this size shows after receiving `raw`. */
export function replay(raw: string, cols = 100, rows = 30): Promise<Screen> {
  const term = new xterm.Terminal({ cols, rows, scrollback: 5000, allowProposedApi: true });
  return new Promise((resolve) => {
    term.write(raw, () => {
      const buffer = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? '');
      while (lines.length > 0 && lines.at(-1) === '') lines.pop();
      resolve({ lines, synchronizedOutput: term.modes.synchronizedOutputMode });
      term.dispose();
    });
  });
}

/** True when the last cursor-visibility sequence in `raw` shows the cursor. */
export function cursorShownAtEnd(raw: string): boolean {
  const hide = raw.lastIndexOf('\u001B[?25l');
  const show = raw.lastIndexOf('\u001B[?25h');
  return show > hide;
}
