/** How numbers, times and steps read in every progress mode. */
import type { StepRef } from '../../index.ts';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `0.42s`, `12.3s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `sha256:` and the first 12 hex digits: enough to tell blobs apart in a log. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 19);
}

/** `[linux/arm64 builder 2/5]`: platform (multi-platform builds only), stage, position. */
export function stepLabel(ref: StepRef): string {
  return `[${ref.platform ? `${ref.platform} ` : ''}${ref.stageName ?? `stage-${ref.stage}`} ${ref.step}/${ref.total}]`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
