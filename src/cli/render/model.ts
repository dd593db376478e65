/**
 * What a command is doing right now, folded from its progress events: the steps running, the
 * blobs moving and their rates, and the totals the summary reports. Every progress mode reads
 * the same model, so the tty view, the plain log and the summary never disagree.
 */
import type { BuildEvent, RegistryEvent, StepRef } from '../../index.ts';

/** Bytes per second over the last few seconds of samples of a growing counter. */
export class RateMeter {
  private samples: { t: number; v: number }[] = [];

  constructor(private readonly windowMs = 3000) {}

  update(t: number, value: number): void {
    const last = this.samples.at(-1);
    // A retried upload starts again from its offset: the old samples no longer describe it.
    if (last && value < last.v) this.samples = [];
    this.samples.push({ t, v: value });
    while (this.samples.length > 2 && this.samples[1]!.t < t - this.windowMs) this.samples.shift();
  }

  /** 0 until there is enough to measure (two samples at least 200 ms apart). */
  rate(): number {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t - first.t < 200) return 0;
    return ((last.v - first.v) * 1000) / (last.t - first.t);
  }
}

export interface StepState {
  ref: StepRef;
  started: number;
  status: 'running' | 'cached' | 'done';
  /** How long it took (from step-start to step-cached or step-done). */
  ms?: number;
  /** The compressed size of the layer it made. */
  layerBytes?: number;
  /** Uncompressed bytes hashed and compressed so far by the layer writer. */
  hashed: number;
  /** The layer's file bytes, when the engine knows them (a bar instead of a sweep). */
  total?: number;
  meter: RateMeter;
}

export interface TransferState {
  direction: 'up' | 'down';
  registry: string;
  repository: string;
  digest: string;
  size: number;
  done: number;
  started: number;
  meter: RateMeter;
}

export interface Totals {
  layersMade: number;
  layersCached: number;
  stepsRun: number;
  stepsCached: number;
  bytesPushed: number;
  blobsPushed: number;
  /** Blobs the registry had already (or mounted from another repository): no bytes sent. */
  bytesSkipped: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesPulled: number;
  blobsPulled: number;
  retries: number;
  warnings: number;
}

export function stepId(ref: StepRef): string {
  return `${ref.platform ?? ''}|${ref.stage}|${ref.step}`;
}

export function transferId(direction: 'up' | 'down', e: { registry: string; repository: string; digest: string }): string {
  return `${direction}|${e.registry}/${e.repository}|${e.digest}`;
}

export class ProgressModel {
  readonly started: number;
  readonly steps = new Map<string, StepState>();
  readonly transfers = new Map<string, TransferState>();
  readonly totals: Totals = {
    layersMade: 0, layersCached: 0, stepsRun: 0, stepsCached: 0,
    bytesPushed: 0, blobsPushed: 0, bytesSkipped: 0, blobsSkipped: 0, blobsMounted: 0,
    bytesPulled: 0, blobsPulled: 0, retries: 0, warnings: 0,
  };

  constructor(readonly now: () => number = Date.now) {
    this.started = now();
  }

  elapsed(): number {
    return this.now() - this.started;
  }

  apply(e: BuildEvent): void {
    const t = this.now();
    switch (e.type) {
      case 'step-start':
        this.steps.set(stepId(e.ref), { ref: e.ref, started: t, status: 'running', hashed: 0, meter: new RateMeter() });
        break;
      case 'step-cached': {
        const s = this.step(e.ref, t);
        s.status = 'cached';
        s.ms = t - s.started;
        this.totals.stepsCached++;
        if (e.layer) this.totals.layersCached++;
        break;
      }
      case 'step-done': {
        const s = this.step(e.ref, t);
        s.status = 'done';
        s.ms = e.ms;
        s.layerBytes = e.layerBytes;
        this.totals.stepsRun++;
        if (!e.emptyLayer) this.totals.layersMade++;
        break;
      }
      case 'layer-progress': {
        const s = this.step(e.ref, t);
        s.hashed += e.bytes;
        if (e.total !== undefined) s.total = e.total;
        s.meter.update(t, s.hashed);
        break;
      }
      case 'warning':
        this.totals.warnings++;
        break;
      case 'registry':
        this.applyRegistry(e.event, t);
        break;
      default:
        break;
    }
  }

  private step(ref: StepRef, t: number): StepState {
    const id = stepId(ref);
    let s = this.steps.get(id);
    if (!s) {
      s = { ref, started: t, status: 'running', hashed: 0, meter: new RateMeter() };
      this.steps.set(id, s);
    }
    return s;
  }

  private applyRegistry(r: RegistryEvent, t: number): void {
    switch (r.type) {
      case 'blob-upload-progress':
        this.progress('up', r, r.sent, t);
        break;
      case 'blob-download-progress':
        this.progress('down', r, r.received, t);
        break;
      case 'blob-uploaded':
        this.transfers.delete(transferId('up', r));
        this.totals.bytesPushed += r.size;
        this.totals.blobsPushed++;
        break;
      case 'blob-skipped':
        this.transfers.delete(transferId('up', r));
        this.totals.bytesSkipped += r.size;
        this.totals.blobsSkipped++;
        break;
      case 'blob-mounted':
        this.transfers.delete(transferId('up', r));
        this.totals.bytesSkipped += r.size;
        this.totals.blobsMounted++;
        break;
      case 'blob-downloaded':
        this.transfers.delete(transferId('down', r));
        this.totals.bytesPulled += r.size;
        this.totals.blobsPulled++;
        break;
      case 'retry':
        this.totals.retries++;
        break;
      default:
        break;
    }
  }

  private progress(direction: 'up' | 'down', r: { registry: string; repository: string; digest: string; size: number }, done: number, t: number): void {
    const id = transferId(direction, r);
    let x = this.transfers.get(id);
    if (!x) {
      x = { direction, registry: r.registry, repository: r.repository, digest: r.digest, size: r.size, done: 0, started: t, meter: new RateMeter() };
      this.transfers.set(id, x);
    }
    x.done = done;
    x.meter.update(t, done);
  }

  running(): StepState[] {
    return [...this.steps.values()].filter((s) => s.status === 'running');
  }

  activeTransfers(): TransferState[] {
    return [...this.transfers.values()];
  }
}
