/**
 * The facts a command ends with, gathered once from its result and the progress model, then
 * written as a line (plain), a block (tty) or an object (json).
 */
import type { BuildResult, PullResult, PushResult } from '../../index.ts';
import { formatBytes, formatDuration, plural } from './format.ts';
import type { ProgressModel } from './model.ts';

/** What a command hands its renderer when it succeeds. */
export type Outcome =
  | { kind: 'build'; result: BuildResult }
  | { kind: 'push' | 'copy'; result: PushResult }
  | { kind: 'pull'; result: PullResult };

/** The summary's fields; also the `summary` line of `--progress json` (documented in docs/cli.md). */
export interface Summary {
  command: Outcome['kind'];
  /** What the tags name: the image manifest, or the index of a multi-platform build. */
  digest: string;
  tags: string[];
  /** Compressed bytes of configs and layers (build only). */
  size?: number;
  platform?: string;
  layersMade?: number;
  layersCached?: number;
  /** Blob bytes sent to registries (image and cache pushes). */
  bytesPushed: number;
  blobsPushed: number;
  /** Blob bytes not sent because the registry had them or mounted them from another repository. */
  bytesSkipped: number;
  blobsSkipped: number;
  blobsMounted: number;
  bytesPulled: number;
  retries: number;
  /** Wall time of the command, in milliseconds. */
  ms: number;
  /** Per step (build only): cached or run, its layer and time. */
  steps?: { stage: number; platform?: string; text: string; cached: boolean; layer?: string; ms: number }[];
  cacheExported?: { ref: string; written: number; existing: number }[];
}

export function summarize(outcome: Outcome, model: ProgressModel): Summary {
  const t = model.totals;
  const common = {
    command: outcome.kind,
    bytesPushed: t.bytesPushed,
    blobsPushed: t.blobsPushed,
    bytesSkipped: t.bytesSkipped,
    blobsSkipped: t.blobsSkipped,
    blobsMounted: t.blobsMounted,
    bytesPulled: t.bytesPulled,
    retries: t.retries,
    ms: model.elapsed(),
  };
  if (outcome.kind === 'build') {
    const r = outcome.result;
    return {
      ...common,
      digest: r.digest,
      tags: r.tags,
      size: r.size,
      platform: r.platform,
      layersMade: r.steps.filter((s) => !s.cached && s.layer).length,
      layersCached: r.steps.filter((s) => s.cached && s.layer).length,
      steps: r.steps.map((s) => ({ stage: s.stage, ...(s.platform ? { platform: s.platform } : {}), text: s.text, cached: s.cached, ...(s.layer ? { layer: s.layer } : {}), ms: s.ms })),
      cacheExported: r.cacheExported,
    };
  }
  if (outcome.kind === 'pull') return { ...common, digest: outcome.result.digest, tags: [outcome.result.reference] };
  return { ...common, digest: outcome.result.digest, tags: outcome.result.tags };
}

/** `pushed 1.2 MiB (2 blobs), skipped 3.4 MiB (1 already there, 1 mounted)`, or '' when nothing moved. */
export function transferText(s: Summary): string {
  const parts: string[] = [];
  if (s.blobsPushed > 0 || s.blobsSkipped + s.blobsMounted > 0) {
    parts.push(`pushed ${formatBytes(s.bytesPushed)} (${plural(s.blobsPushed, 'blob')})`);
    if (s.blobsSkipped + s.blobsMounted > 0) parts.push(`skipped ${formatBytes(s.bytesSkipped)} (${s.blobsSkipped} already there, ${s.blobsMounted} mounted)`);
  }
  if (s.bytesPulled > 0) parts.push(`pulled ${formatBytes(s.bytesPulled)}`);
  if (s.retries > 0) parts.push(plural(s.retries, 'retry', 'retries'));
  return parts.join(', ');
}

/** The one-line summary of plain mode (and the headline of the tty block). */
export function summaryLine(s: Summary): string {
  const transfers = transferText(s);
  const tail = `${transfers ? `; ${transfers}` : ''}; ${formatDuration(s.ms)}`;
  if (s.command === 'build') {
    return `image ${s.digest} (${s.platform}, ${formatBytes(s.size ?? 0)}): ${s.layersMade} layer${s.layersMade === 1 ? '' : 's'} made, ${s.layersCached} cached${tail}`;
  }
  if (s.command === 'pull') return `pulled ${s.tags.join(', ')} ${s.digest}${tail}`;
  return `${s.command === 'push' ? 'pushed' : 'copied to'} ${s.tags.join(', ')}: ${s.digest}${tail}`;
}
