/**
 * Progress rendering. `plain`: one line per event, fit for CI logs. `quiet`: nothing but errors.
 */
import type { BuildEvent, BuildResult } from '../index.ts';

export interface Renderer {
  onEvent: (event: BuildEvent) => void;
  finish: (result: BuildResult) => void;
}

export function createRenderer(mode: 'plain' | 'quiet', out: NodeJS.WritableStream): Renderer {
  if (mode === 'quiet') return { onEvent: () => undefined, finish: () => undefined };
  const write = (line: string): boolean => out.write(`${line}\n`);
  const label = (ref: { stage: number; stageName?: string; step: number; total: number; platform?: string }): string =>
    `[${ref.platform ? `${ref.platform} ` : ''}${ref.stageName ?? `stage-${ref.stage}`} ${ref.step}/${ref.total}]`;
  return {
    onEvent: (e) => {
      switch (e.type) {
        case 'warning':
          write(`WARNING: ${e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : ''}${e.message}`);
          break;
        case 'base-resolved':
          write(`FROM ${e.ref} (${e.digest})`);
          break;
        case 'step-miss-reason':
          write(`${label(e.ref)} ${e.ref.text}: not cached: ${e.reason}`);
          break;
        case 'step-cached':
          write(`${label(e.ref)} ${e.ref.text}: CACHED`);
          break;
        case 'step-done':
          write(`${label(e.ref)} ${e.ref.text}: ${(e.ms / 1000).toFixed(2)}s${e.emptyLayer ? '' : ` (${formatBytes(e.layerBytes ?? 0)})`}`);
          break;
        case 'registry': {
          const r = e.event;
          if (r.type === 'blob-uploaded') write(`pushed ${r.digest.slice(0, 19)} (${formatBytes(r.size)}) to ${r.registry}/${r.repository}`);
          else if (r.type === 'blob-mounted') write(`mounted ${r.digest.slice(0, 19)} from ${r.from}`);
          else if (r.type === 'blob-skipped') write(`exists ${r.digest.slice(0, 19)} in ${r.registry}/${r.repository}`);
          else if (r.type === 'blob-downloaded') write(`pulled ${r.digest.slice(0, 19)} (${formatBytes(r.size)}) from ${r.registry}/${r.repository}`);
          else if (r.type === 'manifest-pushed') write(`pushed manifest ${r.digest.slice(0, 19)} to ${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}`);
          else if (r.type === 'retry') write(`retrying ${r.method} ${r.registry}${r.path} in ${r.delayMs} ms (attempt ${r.attempt}): ${r.reason}`);
          else if (r.type === 'upload-adjusted') write(`upload of ${r.digest.slice(0, 19)} adjusted: ${r.reason}`);
          break;
        }
        case 'sandbox':
          write(`RUN steps of stage ${e.stage} run in ${e.description}`);
          break;
        case 'output':
          write(`wrote ${e.kind === 'registry' ? 'to registry' : e.kind} ${e.dest}`);
          break;
        case 'step-output':
          for (const line of e.text.replace(/\n$/, '').split('\n')) write(`${label(e.ref)} | ${line}`);
          break;
        default:
          break;
      }
    },
    finish: (result) => {
      const made = result.steps.filter((s) => !s.cached && s.layer).length;
      const cached = result.steps.filter((s) => s.cached && s.layer).length;
      for (const c of result.cacheExported) write(`cache ${c.ref}: ${c.written} entries written, ${c.existing} already there`);
      write(`image ${result.digest} (${result.platform}, ${formatBytes(result.size)}): ${made} layer${made === 1 ? '' : 's'} made, ${cached} cached`);
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
