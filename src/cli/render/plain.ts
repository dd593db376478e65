/**
 * `--progress plain`: one line per event, no escape codes, fit for CI logs. Byte progress of a
 * long layer or transfer is a line every `intervalMs` (10 s by default), so a slow push still
 * shows signs of life without flooding the log.
 */
import type { BuildEvent } from '../../index.ts';
import { formatBytes, formatDuration, formatRate, shortDigest, stepLabel } from './format.ts';
import { ProgressModel, stepId, transferId } from './model.ts';
import { summarize, summaryLine, type Outcome } from './summary.ts';
import type { Renderer } from './renderer.ts';

export interface PlainOptions {
  /** Least time between two progress lines for the same step or blob. */
  intervalMs?: number;
  now?: () => number;
}

export function plainRenderer(out: NodeJS.WritableStream, options: PlainOptions = {}): Renderer {
  const model = new ProgressModel(options.now);
  const interval = options.intervalMs ?? 10_000;
  const lastProgress = new Map<string, number>();
  const write = (line: string): void => {
    out.write(`${line}\n`);
  };
  /** True when a progress line for `id` is due (never for the first chunk: short work stays quiet). */
  const due = (id: string): boolean => {
    const t = model.now();
    const last = lastProgress.get(id);
    if (last === undefined) {
      lastProgress.set(id, t);
      return false;
    }
    if (t - last < interval) return false;
    lastProgress.set(id, t);
    return true;
  };

  return {
    onEvent: (e) => {
      model.apply(e);
      const line = lineFor(e, model, due);
      if (line !== undefined) for (const l of line.split('\n')) write(l);
    },
    done: (outcome: Outcome) => {
      if (outcome.kind === 'build') {
        for (const c of outcome.result.cacheExported) write(`cache ${c.ref}: ${c.written} entries written, ${c.existing} already there`);
      }
      write(summaryLine(summarize(outcome, model)));
    },
    fail: () => false,
  };
}

function lineFor(e: BuildEvent, model: ProgressModel, due: (id: string) => boolean): string | undefined {
  switch (e.type) {
    case 'warning':
      return `WARNING: ${e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : ''}${e.message}`;
    case 'base-resolved':
      return `FROM ${e.ref} (${e.digest})`;
    case 'step-start':
      return `${stepLabel(e.ref)} ${e.ref.text}`;
    case 'step-miss-reason':
      return `${stepLabel(e.ref)} ${e.ref.text}: not cached: ${e.reason}`;
    case 'step-cached':
      return `${stepLabel(e.ref)} ${e.ref.text}: CACHED`;
    case 'step-done': {
      const s = model.steps.get(stepId(e.ref));
      const hashed = s && s.hashed >= 1024 * 1024 && e.ms > 0 ? `; ${formatBytes(s.hashed)} hashed at ${formatRate((s.hashed * 1000) / e.ms)}` : '';
      return `${stepLabel(e.ref)} ${e.ref.text}: ${(e.ms / 1000).toFixed(2)}s${e.emptyLayer ? '' : ` (${formatBytes(e.layerBytes ?? 0)}${hashed})`}`;
    }
    case 'layer-progress': {
      const s = model.steps.get(stepId(e.ref));
      if (!s || !due(`step|${stepId(e.ref)}`)) return undefined;
      return `${stepLabel(e.ref)} ${e.ref.text}: ${formatBytes(s.hashed)} hashed (${formatRate(s.meter.rate())})`;
    }
    case 'step-output':
      return e.text.replace(/\n$/, '').split('\n').map((line) => `${stepLabel(e.ref)} | ${line}`).join('\n');
    case 'sandbox':
      return `RUN steps of stage ${e.stage} run in ${e.description}`;
    case 'output':
      return `wrote ${e.kind === 'registry' ? 'to registry' : e.kind} ${e.dest}`;
    case 'registry':
      return registryLine(e.event, model, due);
    default:
      return undefined;
  }
}

function registryLine(r: Extract<BuildEvent, { type: 'registry' }>['event'], model: ProgressModel, due: (id: string) => boolean): string | undefined {
  switch (r.type) {
    case 'blob-uploaded':
      return `pushed ${shortDigest(r.digest)} (${formatBytes(r.size)}) to ${r.registry}/${r.repository}`;
    case 'blob-mounted':
      return `mounted ${shortDigest(r.digest)} from ${r.from}`;
    case 'blob-skipped':
      return `exists ${shortDigest(r.digest)} in ${r.registry}/${r.repository}`;
    case 'blob-downloaded':
      return `pulled ${shortDigest(r.digest)} (${formatBytes(r.size)}) from ${r.registry}/${r.repository}`;
    case 'manifest-pushed':
      return `pushed manifest ${shortDigest(r.digest)} to ${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}`;
    case 'retry':
      return `retrying ${r.method} ${r.registry}${r.path} in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`;
    case 'upload-adjusted':
      return `upload of ${shortDigest(r.digest)} adjusted: ${r.reason}`;
    case 'auth':
      return `auth ${r.registry}: ${r.scheme} for ${r.scopes.join(' ') || 'the registry'} with ${r.source}`;
    case 'blob-upload-progress':
    case 'blob-download-progress': {
      const up = r.type === 'blob-upload-progress';
      const x = model.transfers.get(transferId(up ? 'up' : 'down', r));
      if (!x || !due(transferId(up ? 'up' : 'down', r))) return undefined;
      const pct = x.size > 0 ? ` ${Math.floor((x.done * 100) / x.size)}%` : '';
      return `${up ? 'pushing' : 'pulling'} ${shortDigest(r.digest)}${pct} (${formatBytes(x.done)} of ${formatBytes(x.size)}, ${formatRate(x.meter.rate())}, ${formatDuration(model.now() - x.started)})`;
    }
    default:
      return undefined;
  }
}
