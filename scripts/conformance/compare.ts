/**
 * The comparison itself: two images (buildah's, lading's) in, a list of differences out, each
 * marked known when a case (or known.json) lists it with a reason.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Aspect, KnownDifference } from './cases.ts';
import type { FsEntry, ImageSnapshot } from './image.ts';

/** The config fields compared; the rest (Hostname, ArgsEscaped, …) are builder bookkeeping. */
export const CONFIG_FIELDS = [
  'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell',
] as const;

export type Difference = {
  buildah: unknown;
  lading: unknown;
  /** The listed difference this one is, if any. */
  known?: KnownDifference;
} & ({ what: 'config'; field: string } | { what: 'fs'; path: string; aspect: Aspect } | { what: 'layers' });

export interface Side {
  config: Record<string, unknown>;
  image: ImageSnapshot;
}

export function compareImages(buildah: Side, lading: Side): Difference[] {
  return [...compareConfig(buildah.config, lading.config), ...compareTrees(buildah.image.files, lading.image.files), ...compareLayers(buildah.image, lading.image)];
}

/**
 * Empty values mean "not set" to a container runtime, and builders differ in which they write
 * (buildah's Docker view writes `"Entrypoint": []`, `"Volumes": {}`): all compare as unset. A
 * health check's zero durations are its defaults, so they compare as unset too.
 */
export function normalizeField(field: string, value: unknown): unknown {
  if (value === null || value === undefined || value === '') return undefined;
  if (Array.isArray(value) && value.length === 0) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => !(field === 'Healthcheck' && (v === 0 || v === null)));
    if (entries.length === 0) return undefined;
    return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return value;
}

function compareConfig(b: Record<string, unknown>, l: Record<string, unknown>): Difference[] {
  const out: Difference[] = [];
  for (const field of CONFIG_FIELDS) {
    const bv = normalizeField(field, b[field]);
    const lv = normalizeField(field, l[field]);
    if (!isDeepStrictEqual(bv, lv)) out.push({ what: 'config', field, buildah: bv, lading: lv });
  }
  return out;
}

const PROPERTIES: Array<Exclude<Aspect, 'only-buildah' | 'only-lading' | 'type' | 'content'>> = ['mode', 'uid', 'gid', 'link', 'rdev', 'hardlink'];

function compareTrees(b: Map<string, FsEntry>, l: Map<string, FsEntry>): Difference[] {
  const out: Difference[] = [];
  const paths = [...new Set([...b.keys(), ...l.keys()])].sort();
  for (const p of paths) {
    const be = b.get(p);
    const le = l.get(p);
    if (!le) {
      out.push({ what: 'fs', path: p, aspect: 'only-buildah', buildah: be, lading: undefined });
      continue;
    }
    if (!be) {
      out.push({ what: 'fs', path: p, aspect: 'only-lading', buildah: undefined, lading: le });
      continue;
    }
    if (be.type !== le.type) {
      out.push({ what: 'fs', path: p, aspect: 'type', buildah: be, lading: le });
      continue;
    }
    for (const prop of PROPERTIES) {
      if (be[prop] !== le[prop]) out.push({ what: 'fs', path: p, aspect: prop, buildah: be[prop], lading: le[prop] });
    }
    if (be.size !== le.size || be.digest !== le.digest) {
      out.push({ what: 'fs', path: p, aspect: 'content', buildah: content(be), lading: content(le) });
    }
  }
  return out;
}

function content(e: FsEntry): { size?: number; digest?: string; preview?: string } {
  return { size: e.size, digest: e.digest, preview: e.preview };
}

/** Layers with at least one entry (an empty tar is no layer to a runtime). */
function compareLayers(b: ImageSnapshot, l: ImageSnapshot): Difference[] {
  const count = (s: ImageSnapshot): number => s.layers.filter((x) => x.entries > 0).length;
  if (count(b) === count(l)) return [];
  return [{ what: 'layers', buildah: count(b), lading: count(l) }];
}

/** Mark each difference that a known one describes; return the case's listed ones never seen. */
export function applyKnown(diffs: Difference[], caseKnown: KnownDifference[], globalKnown: KnownDifference[]): KnownDifference[] {
  const seen = new Set<KnownDifference>();
  for (const d of diffs) {
    const k = caseKnown.find((c) => describes(c, d)) ?? globalKnown.find((g) => describes(g, d));
    if (k) {
      d.known = k;
      seen.add(k);
    }
  }
  return caseKnown.filter((k) => !seen.has(k));
}

export function describes(k: KnownDifference, d: Difference): boolean {
  if (k.what !== d.what) return false;
  if (k.what === 'config' && d.what === 'config' && k.field !== d.field) return false;
  if (k.what === 'fs' && d.what === 'fs') {
    if (!globToRegExp(k.path).test(d.path)) return false;
    if (k.aspect && k.aspect !== d.aspect) return false;
  }
  if ('buildah' in k && !subsetMatch(k.buildah, d.buildah)) return false;
  if ('lading' in k && !subsetMatch(k.lading, d.lading)) return false;
  return true;
}

/** `expected` equals `actual`, or (objects) every key of `expected` subset-matches `actual`'s. */
export function subsetMatch(expected: unknown, actual: unknown): boolean {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    return Object.entries(expected as Record<string, unknown>).every(([key, v]) => subsetMatch(v, (actual as Record<string, unknown>)[key]));
  }
  return isDeepStrictEqual(expected, actual);
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
