/**
 * `--progress json`: one JSON object per line on stderr, for machines. Each line is a library
 * BuildEvent as `onEvent` receives it, plus `elapsedMs`; the last line is a `summary` or an
 * `error`. Byte-progress events are thinned to one per step or blob every `intervalMs` (layer
 * byte counts are summed, so their total stays exact). Field names are stable: docs/cli.md.
 */
import { isLadingError, type BuildEvent, type StepRef } from '../../index.ts';
import { ProgressModel, stepId, transferId } from './model.ts';
import { summarize, type Outcome } from './summary.ts';
import type { Renderer } from './renderer.ts';

/** Bumped only if a field changes meaning or goes away; new fields and event types may appear. */
export const JSON_PROGRESS_VERSION = 1;

export interface JsonOptions {
  intervalMs?: number;
  now?: () => number;
}

export function jsonRenderer(out: NodeJS.WritableStream, options: JsonOptions = {}): Renderer {
  const model = new ProgressModel(options.now);
  const interval = options.intervalMs ?? 250;
  const lastSent = new Map<string, number>();
  /** Layer bytes not yet written out, per step. */
  const pendingBytes = new Map<string, number>();
  // The latest totals and rate of each layer, sent with its thinned byte count.
  const latestLayer = new Map<string, Extract<BuildEvent, { type: 'layer-progress' }>>();
  const write = (obj: Record<string, unknown>): void => {
    out.write(`${JSON.stringify({ ...obj, elapsedMs: model.elapsed() })}\n`);
  };
  const throttled = (id: string): boolean => {
    const t = model.now();
    const last = lastSent.get(id);
    if (last !== undefined && t - last < interval) return true;
    lastSent.set(id, t);
    return false;
  };
  const flushLayerBytes = (ref: StepRef): void => {
    const id = stepId(ref);
    const bytes = pendingBytes.get(id);
    if (bytes === undefined) return;
    pendingBytes.delete(id);
    const latest = latestLayer.get(id);
    write({ type: 'layer-progress', ref, bytes, ...(latest ? { total: latest.total, compressed: latest.compressed, bytesPerSecond: latest.bytesPerSecond } : {}) });
  };

  write({ type: 'start', version: JSON_PROGRESS_VERSION });
  return {
    onEvent: (e) => {
      model.apply(e);
      if (e.type === 'layer-progress') {
        const id = stepId(e.ref);
        pendingBytes.set(id, (pendingBytes.get(id) ?? 0) + e.bytes);
        latestLayer.set(id, e);
        if (!throttled(`step|${id}`)) flushLayerBytes(e.ref);
        return;
      }
      if (e.type === 'step-done' || e.type === 'step-cached') flushLayerBytes(e.ref);
      if (e.type === 'registry' && (e.event.type === 'blob-upload-progress' || e.event.type === 'blob-download-progress')) {
        if (throttled(transferId(e.event.type === 'blob-upload-progress' ? 'up' : 'down', e.event))) return;
      }
      write({ ...e });
    },
    done: (outcome: Outcome) => {
      write({ type: 'summary', ...summarize(outcome, model) });
    },
    fail: (error, exitStatus) => {
      if (isLadingError(error)) {
        write({
          type: 'error',
          code: error.code,
          message: error.message,
          ...(error.hint ? { hint: error.hint } : {}),
          ...(error.location ? { location: error.location } : {}),
          text: error.describe(),
          exitStatus,
        });
      } else {
        write({ type: 'error', code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), text: error instanceof Error ? (error.stack ?? error.message) : String(error), exitStatus });
      }
      return true;
    },
  };
}
