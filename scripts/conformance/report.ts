/** Case results as text for people: each difference as a diff line, known ones with their reason, and the summary line. */
import type { CaseResult } from './runner.ts';
import type { Difference } from './compare.ts';
import type { FsEntry, LayerSummary } from './image.ts';

/** More than this many unlisted differences in one case are counted, not all printed. */
const MAX_SHOWN = 40;

export function formatCase(r: CaseResult): string {
  const phases = Object.entries(r.phases).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)}`).join(', ');
  const head = `${statusWord(r)} ${r.name} (${(r.ms / 1000).toFixed(1)} s${phases ? `: ${phases}` : ''})`;
  const lines = [head];
  if (r.status === 'skipped') lines.push(`    skipped: ${r.skipReason}`);
  if (r.harnessError) lines.push('    the harness failed (not a difference):', indent(r.harnessError, 6));
  if (r.buildahError) lines.push('    buildah build failed:', indent(r.buildahError, 6));
  if (r.ladingError) lines.push(`    lading build failed${r.runUnsupported ? ' (RUN is not supported by this lading build)' : ''}:`, indent(r.ladingError, 6));
  const unknown = r.differences.filter((d) => !d.known);
  for (const d of unknown.slice(0, MAX_SHOWN)) lines.push(...formatDifference(d).map((l) => `    ${l}`));
  if (unknown.length > MAX_SHOWN) lines.push(`    … and ${unknown.length - MAX_SHOWN} more unlisted differences`);
  if (unknown.some((d) => d.what === 'layers') && r.layers) lines.push(...formatLayers(r.layers.buildah, r.layers.lading).map((l) => `      ${l}`));
  const known = r.differences.filter((d) => d.known);
  for (const d of known) lines.push(`    known: ${label(d)} (${d.known!.reason})`);
  for (const k of r.stale) lines.push(`    stale: case.json lists a ${k.what} difference${'field' in k ? ` in ${k.field}` : ''}${'path' in k ? ` at ${k.path}` : ''} that did not occur`);
  return lines.join('\n');
}

function statusWord(r: CaseResult): string {
  switch (r.status) {
    case 'match': return 'MATCH  ';
    case 'known': return 'KNOWN  ';
    case 'differ': return 'DIFFER ';
    case 'error': return r.runUnsupported ? 'NO-RUN ' : 'ERROR  ';
    case 'skipped': return 'SKIP   ';
  }
}

export function label(d: Difference): string {
  if (d.what === 'config') return `config.${d.field}`;
  if (d.what === 'layers') return `layers (buildah ${String(d.buildah)}, lading ${String(d.lading)})`;
  return `${d.aspect} ${d.path}`;
}

export function formatDifference(d: Difference): string[] {
  if (d.what === 'config') {
    return [`config.${d.field}:`, `- buildah ${json(d.buildah)}`, `+ lading  ${json(d.lading)}`];
  }
  if (d.what === 'layers') return [`non-empty layers: - buildah ${String(d.buildah)}  + lading ${String(d.lading)}`];
  switch (d.aspect) {
    case 'only-buildah': return [`- ${d.path}  ${entry(d.buildah as FsEntry)}  (only in buildah's image)`];
    case 'only-lading': return [`+ ${d.path}  ${entry(d.lading as FsEntry)}  (only in lading's image)`];
    case 'type': return [`${d.path}:`, `- buildah ${entry(d.buildah as FsEntry)}`, `+ lading  ${entry(d.lading as FsEntry)}`];
    case 'content': {
      const b = d.buildah as Pick<FsEntry, 'size' | 'digest' | 'preview'>;
      const l = d.lading as Pick<FsEntry, 'size' | 'digest' | 'preview'>;
      return [`${d.path} content:`, `- buildah ${contentText(b)}`, `+ lading  ${contentText(l)}`];
    }
    default: return [`${d.path} ${d.aspect}: - buildah ${json(d.buildah)}  + lading ${json(d.lading)}`];
  }
}

function entry(e: FsEntry): string {
  const extra = e.type === 'file' ? ` ${e.size} B` : e.type === 'symlink' ? ` -> ${e.link}` : e.rdev ? ` ${e.rdev}` : '';
  return `${e.type} ${e.mode} ${e.uid}:${e.gid}${extra}`;
}

function contentText(c: Pick<FsEntry, 'size' | 'digest' | 'preview'>): string {
  const shown = c.preview !== undefined ? ` ${JSON.stringify(c.preview.length > 160 ? `${c.preview.slice(0, 160)}…` : c.preview)}` : '';
  return `${c.size} B sha256:${c.digest?.slice(0, 12)}${shown}`;
}

function formatLayers(b: LayerSummary[], l: LayerSummary[]): string[] {
  const one = (s: LayerSummary): string => `${s.entries} entries${s.entries > 0 ? `: ${s.sample.join(' ')}${s.entries > s.sample.length ? ' …' : ''}` : ''}`;
  return [...b.map((s, i) => `buildah layer ${i}: ${one(s)}`), ...l.map((s, i) => `lading  layer ${i}: ${one(s)}`)];
}

function json(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}

function indent(text: string, n: number): string {
  return text.split('\n').map((l) => `${' '.repeat(n)}${l}`).join('\n');
}

/** `N of M cases match (K with known differences)`: a case matches with no unlisted difference and both builds succeeding. */
export function summaryLine(results: CaseResult[]): string {
  const ran = results.filter((r) => r.status !== 'skipped');
  const matched = ran.filter((r) => r.status === 'match' || r.status === 'known');
  const known = ran.filter((r) => r.status === 'known');
  return `${matched.length} of ${ran.length} cases match (${known.length} with known differences)`;
}
