/**
 * `--progress tty`: a live view on a terminal. Finished steps, warnings and RUN output scroll
 * up as ordinary lines; below them, redrawn in place, one line per running step (with bytes
 * hashed and compressed, and their rate) and one byte bar per blob being pulled or pushed, then
 * a status line. log-update does the redrawing (diffing frames, erasing exactly what it drew,
 * hiding the cursor and showing it again on any exit); docs/decisions.md says why.
 */
import { createLogUpdate } from 'log-update';
import type { BuildEvent } from '../../index.ts';
import { formatBytes, formatDuration, formatRate, plural, shortDigest, stepLabel } from './format.ts';
import { ProgressModel, type StepState, type TransferState } from './model.ts';
import { summarize, transferText, type Outcome } from './summary.ts';
import type { Renderer } from './renderer.ts';

type Style = 'green' | 'yellow' | 'red' | 'dim' | 'bold' | 'cyan';
const SGR: Record<Style, number> = { green: 32, yellow: 33, red: 31, dim: 2, bold: 1, cyan: 36 };
const paint = (style: Style, text: string): string => `\u001B[${SGR[style]}m${text}\u001B[0m`;

/** A line as styled pieces, so it can be cut to the terminal's width before the styles go in. */
type Segment = [Style | undefined, string];

/** Cut a line to `width` characters (a wrapped line would break the redraw), then style it. */
export function fit(segments: Segment[], width: number): string {
  let room = Math.max(1, width - 1);
  let out = '';
  for (const [style, text] of segments) {
    if (room <= 0) break;
    const piece = text.length > room ? `${text.slice(0, Math.max(0, room - 1))}…` : text;
    room -= piece.length;
    out += style ? paint(style, piece) : piece;
  }
  return out;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const BAR_WIDTH = 20;

function bar(done: number, total: number): string {
  const filled = total > 0 ? Math.min(BAR_WIDTH, Math.floor((done * BAR_WIDTH) / total)) : 0;
  return '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
}

/** Without a known total (a layer of RUN changes), a block sweeping the track says "working", not "how far". */
function sweep(t: number): string {
  const pos = Math.floor(t / 120) % (2 * (BAR_WIDTH - 4));
  const at = pos < BAR_WIDTH - 4 ? pos : 2 * (BAR_WIDTH - 4) - pos;
  return '░'.repeat(at) + '████' + '░'.repeat(BAR_WIDTH - 4 - at);
}

export interface TtyOptions {
  /** Redraw period; the frame is also redrawn whenever a line is printed above it. */
  frameMs?: number;
  now?: () => number;
}

export function ttyRenderer(out: NodeJS.WriteStream, options: TtyOptions = {}): Renderer {
  const model = new ProgressModel(options.now);
  // A pseudo-terminal without a size (some CI runners, `script` without a tty) reports 0 columns.
  const screen = {
    get columns(): number {
      return out.columns || 100;
    },
    get rows(): number {
      return out.rows || 30;
    },
    isTTY: true,
    write: (chunk: string): boolean => out.write(chunk),
  };
  // log-update reads only columns, rows, isTTY and write from its stream.
  const live = createLogUpdate(screen as unknown as NodeJS.WritableStream);
  let stopped = false;

  const draw = (): void => {
    if (!stopped) live(frame(model, screen.columns, screen.rows).join('\n'));
  };
  const print = (lines: string[]): void => {
    if (lines.length > 0 && !stopped) {
      live.persist(lines.join('\n'));
      draw();
    }
  };
  const timer = setInterval(draw, options.frameMs ?? 100);
  timer.unref();

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    live.clear();
    live.done();
  };

  return {
    onEvent: (e) => {
      model.apply(e);
      print(linesFor(e, screen.columns));
    },
    done: (outcome: Outcome) => {
      stop();
      out.write(`${summaryBlock(outcome, model).join('\n')}\n`);
    },
    fail: () => {
      stop();
      return false;
    },
  };
}

/** What scrolls up above the live area for an event. */
function linesFor(e: BuildEvent, width: number): string[] {
  switch (e.type) {
    case 'step-done': {
      const layer = e.emptyLayer ? '' : `  ${formatBytes(e.layerBytes ?? 0)}`;
      return [fit([['green', '✔ '], [undefined, `${stepLabel(e.ref)} ${e.ref.text}`], ['dim', `  ${formatDuration(e.ms)}${layer}`]], width)];
    }
    case 'step-cached':
      return [fit([['green', '✔ '], ['dim', `${stepLabel(e.ref)} ${e.ref.text}`], ['cyan', '  CACHED']], width)];
    case 'step-miss-reason':
      return [fit([['yellow', '  ↳ '], ['dim', `${stepLabel(e.ref)} not cached: ${e.reason}`]], width)];
    case 'step-output':
      return e.text.replace(/\n$/, '').split('\n').map((line) => fit([['dim', `  ${stepLabel(e.ref)} | `], [undefined, line]], width));
    case 'warning':
      return [fit([['yellow', '! '], [undefined, `${e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : ''}${e.message}`]], width)];
    case 'base-resolved':
      return [fit([['green', '✔ '], [undefined, `FROM ${e.ref}`], ['dim', `  ${shortDigest(e.digest)}`]], width)];
    case 'sandbox':
      return [fit([['dim', `  RUN steps of stage ${e.stage} run in ${e.description}`]], width)];
    case 'output':
      return [fit([['green', '→ '], [undefined, `wrote ${e.kind === 'registry' ? '' : `${e.kind} `}${e.dest}`]], width)];
    case 'registry': {
      const r = e.event;
      if (r.type === 'retry') return [fit([['yellow', '↻ '], [undefined, `retrying ${r.method} ${r.registry}${r.path} in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`]], width)];
      if (r.type === 'upload-adjusted') return [fit([['yellow', '↻ '], [undefined, `upload of ${shortDigest(r.digest)} adjusted: ${r.reason}`]], width)];
      return [];
    }
    default:
      return [];
  }
}

/** The live area: running steps, moving blobs, a status line; never taller than the terminal. */
export function frame(model: ProgressModel, width: number, rows: number): string[] {
  const t = model.now();
  const spin = SPINNER[Math.floor(t / 100) % SPINNER.length]!;
  const lines: string[] = [];
  for (const s of model.running()) lines.push(stepLine(s, spin, t, width));
  for (const x of model.activeTransfers()) lines.push(transferLine(x, width));
  const room = Math.max(1, rows - 2);
  if (lines.length > room) {
    const hidden = lines.length - (room - 1);
    lines.splice(room - 1, lines.length, fit([['dim', `  … and ${hidden} more`]], width));
  }
  lines.push(statusLine(model, width));
  return lines;
}

function stepLine(s: StepState, spin: string, t: number, width: number): string {
  const segments: Segment[] = [['cyan', `${spin} `], [undefined, `${stepLabel(s.ref)} ${s.ref.text}`]];
  const tail: Segment[] = [['dim', `  ${formatDuration(t - s.started)}`]];
  if (s.hashed > 0) {
    const rate = s.meter.rate();
    const progress = s.total ? `${bar(Math.min(s.hashed, s.total), s.total)} ${formatBytes(s.hashed)}/${formatBytes(s.total)}` : `${sweep(t)} ${formatBytes(s.hashed)}`;
    tail.unshift(['dim', `  compressing ${progress}${rate > 0 ? `  ${formatRate(rate)}` : ''}`]);
  }
  // The instruction gives way first, so the numbers stay on screen on a narrow terminal.
  const tailLength = tail.reduce((n, [, text]) => n + text.length, 0);
  const head = fit(segments, Math.max(20, width - tailLength));
  return head + fit(tail, Math.max(2, width - stripLength(head)));
}

function transferLine(x: TransferState, width: number): string {
  const rate = x.meter.rate();
  const verb = x.direction === 'up' ? '↑ push' : '↓ pull';
  return fit(
    [
      ['cyan', `${verb} `],
      [undefined, `${shortDigest(x.digest)} `],
      ['green', bar(x.done, x.size)],
      [undefined, ` ${formatBytes(x.done)}/${formatBytes(x.size)}`],
      ['dim', `${rate > 0 ? `  ${formatRate(rate)}` : ''}  ${x.registry}/${x.repository}`],
    ],
    width,
  );
}

function statusLine(model: ProgressModel, width: number): string {
  const t = model.totals;
  const parts = [formatDuration(model.elapsed())];
  if (t.stepsRun + t.stepsCached > 0) parts.push(`${plural(t.layersMade, 'layer')} made`, `${t.layersCached} cached`);
  if (t.bytesPushed > 0 || t.blobsSkipped + t.blobsMounted > 0) parts.push(`↑ ${formatBytes(t.bytesPushed)}`);
  if (t.bytesPulled > 0) parts.push(`↓ ${formatBytes(t.bytesPulled)}`);
  if (t.retries > 0) parts.push(plural(t.retries, 'retry', 'retries'));
  return fit([['dim', `  ${parts.join(' · ')}`]], width);
}

function stripLength(styled: string): number {
  return styled.replace(/\u001B\[\d+m/g, '').length;
}

/** The final block: what was made, how big, what moved, how long. */
function summaryBlock(outcome: Outcome, model: ProgressModel): string[] {
  const s = summarize(outcome, model);
  const lines: string[] = [];
  if (s.command === 'build') {
    lines.push(`${paint('green', '✔')} ${paint('bold', `image ${s.digest}`)}`);
    lines.push(`  ${s.platform} · ${formatBytes(s.size ?? 0)} · ${plural(s.layersMade ?? 0, 'layer')} made, ${s.layersCached} cached · ${formatDuration(s.ms)}`);
    for (const c of s.cacheExported ?? []) lines.push(`  cache ${c.ref}: ${c.written} entries written, ${c.existing} already there`);
  } else {
    const verb = s.command === 'push' ? 'pushed' : s.command === 'copy' ? 'copied' : 'pulled';
    lines.push(`${paint('green', '✔')} ${paint('bold', `${verb} ${s.digest}`)}`);
    lines.push(`  ${formatDuration(s.ms)}`);
  }
  const transfers = transferText(s);
  if (transfers) lines.push(`  ${transfers}`);
  if (s.tags.length > 0) lines.push(`  ${s.tags.join(', ')}`);
  return lines;
}
