/**
 * Progress for the CLI: `--progress auto|tty|plain|json|quiet` chooses a renderer. Escape codes
 * are written only to a terminal, and never when NO_COLOR is set or TERM is dumb; `auto` is the
 * live tty view on such a terminal and plain lines everywhere else (CI logs, pipes, files).
 */
import type { BuildEvent } from '../index.ts';
import { jsonRenderer } from './render/json.ts';
import { plainRenderer } from './render/plain.ts';
import type { Renderer } from './render/renderer.ts';

export { formatBytes } from './render/format.ts';
export type { Renderer } from './render/renderer.ts';
export type { Outcome, Summary } from './render/summary.ts';

export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'json', 'quiet'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

export function isProgressMode(value: string): value is ProgressMode {
  return (PROGRESS_MODES as readonly string[]).includes(value);
}

/** Whether `stream` may receive escape codes (https://no-color.org: a non-empty NO_COLOR). */
export function canDrawOn(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

/** The mode actually used: `auto` and `tty` become `plain` where escape codes are not allowed. */
export function resolveMode(requested: ProgressMode, stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Exclude<ProgressMode, 'auto'> {
  if (requested === 'auto' || requested === 'tty') return canDrawOn(stream, env) ? 'tty' : 'plain';
  return requested;
}

const silent: Renderer = { onEvent: () => undefined, done: () => undefined, fail: () => false };

export function createRenderer(requested: ProgressMode, out: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): Renderer {
  const mode = resolveMode(requested, out, env);
  const interval = env.LADING_PROGRESS_INTERVAL_MS ? Number(env.LADING_PROGRESS_INTERVAL_MS) : undefined;
  switch (mode) {
    case 'quiet':
      return silent;
    case 'json':
      return jsonRenderer(out);
    case 'tty':
      return lazyTty(out);
    default:
      return plainRenderer(out, interval !== undefined && Number.isFinite(interval) ? { intervalMs: interval } : {});
  }
}

/**
 * The tty view, loaded in the background: its terminal library costs more start-up time than a
 * whole no-op rebuild should take, and plain, json and quiet runs never need it. Events that
 * arrive first are replayed; a command that ends before it loads gets plain lines instead.
 */
function lazyTty(out: NodeJS.WriteStream): Renderer {
  let real: Renderer | undefined;
  let ended = false;
  const queued: BuildEvent[] = [];
  void import('./render/tty.ts').then(({ ttyRenderer }) => {
    if (ended) return;
    real = ttyRenderer(out);
    for (const e of queued.splice(0)) real.onEvent(e);
  });
  const settle = (): Renderer => {
    ended = true;
    if (real) return real;
    const plain = plainRenderer(out);
    for (const e of queued.splice(0)) plain.onEvent(e);
    return plain;
  };
  return {
    onEvent: (e) => (real ? real.onEvent(e) : void queued.push(e)),
    done: (outcome) => settle().done(outcome),
    fail: (error, status) => settle().fail(error, status),
  };
}
