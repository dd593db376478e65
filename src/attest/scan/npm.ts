/**
 * npm packages: installed ones from `node_modules/<name>/package.json`, and the resolved tree of
 * lock files (`package-lock.json` v1–v3, `yarn.lock` v1, `pnpm-lock.yaml` v5–v9 package keys).
 * Lock files are read by their documented shapes with line rules, not a YAML parser: only the
 * package keys and versions are needed.
 */
import type { FoundPackage } from './found.ts';

/** Whether `path` is the manifest of an installed package (`…/node_modules/[@scope/]name/package.json`). */
export function isInstalledPackageJson(path: string): boolean {
  const parts = path.split('/');
  const n = parts.length;
  if (n < 3 || parts[n - 1] !== 'package.json') return false;
  if (parts[n - 3] === 'node_modules' && !parts[n - 2]!.startsWith('.') && !parts[n - 2]!.startsWith('@')) return true;
  return n >= 4 && parts[n - 4] === 'node_modules' && parts[n - 3]!.startsWith('@');
}

export function isLockFile(path: string): 'npm-package-lock' | 'yarn-lock' | 'pnpm-lock' | undefined {
  const base = path.slice(path.lastIndexOf('/') + 1);
  // node_modules/.package-lock.json and lock files shipped inside packages describe nothing installed here.
  if (path.split('/').includes('node_modules')) return undefined;
  if (base === 'package-lock.json' || base === 'npm-shrinkwrap.json') return 'npm-package-lock';
  if (base === 'yarn.lock') return 'yarn-lock';
  if (base === 'pnpm-lock.yaml') return 'pnpm-lock';
  return undefined;
}

/** The licence of a manifest: `license` as a string or `{type}`, or the legacy `licenses` array. */
function manifestLicenses(json: Record<string, unknown>): string[] {
  const one = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string' ? (v as { type: string }).type : undefined;
  const single = one(json.license);
  if (single !== undefined) return [single];
  if (Array.isArray(json.licenses)) {
    const all = json.licenses.map(one).filter((x): x is string => x !== undefined);
    // The legacy array lists alternatives the user may choose between.
    return all.length > 1 ? [`(${all.join(' OR ')})`] : all;
  }
  return [];
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function parsePackageJson(text: string): FoundPackage | undefined {
  const json = asObject(JSON.parse(text));
  if (!json) return undefined;
  const { name, version } = json;
  if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') return undefined;
  return { ecosystem: 'npm', source: 'npm-package.json', name, version, licenses: manifestLicenses(json) };
}

/** The package name a lock key `node_modules/a/node_modules/@s/b` installs: `@s/b`. */
function nameFromLockPath(key: string): string | undefined {
  const i = key.lastIndexOf('node_modules/');
  return i < 0 ? undefined : key.slice(i + 'node_modules/'.length) || undefined;
}

export function parsePackageLock(text: string): FoundPackage[] {
  const json = asObject(JSON.parse(text));
  if (!json) return [];
  const out: FoundPackage[] = [];
  const packages = asObject(json.packages);
  if (packages) {
    // v2 and v3: a flat map from install path to entry; "" is the project itself.
    for (const [key, raw] of Object.entries(packages)) {
      const entry = asObject(raw);
      if (key === '' || !entry || entry.link === true) continue;
      const name = typeof entry.name === 'string' ? entry.name : nameFromLockPath(key);
      if (!name || typeof entry.version !== 'string') continue;
      out.push({ ecosystem: 'npm', source: 'npm-package-lock', name, version: entry.version, licenses: manifestLicenses(entry) });
    }
    return out;
  }
  // v1: nested `dependencies`.
  const walk = (deps: Record<string, unknown> | undefined, depth: number): void => {
    if (!deps || depth > 64) return;
    for (const [name, raw] of Object.entries(deps)) {
      const entry = asObject(raw);
      if (!entry) continue;
      if (typeof entry.version === 'string' && !entry.version.startsWith('file:')) {
        out.push({ ecosystem: 'npm', source: 'npm-package-lock', name, version: entry.version, licenses: [] });
      }
      walk(asObject(entry.dependencies), depth + 1);
    }
  };
  walk(asObject(json.dependencies), 0);
  return out;
}

/** yarn.lock v1: `"a@^1", a@~1.2:` headers, each followed by an indented `version "1.2.3"`. */
export function parseYarnLock(text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let names: string[] = [];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.startsWith('#') || line.trim() === '') continue;
    if (!line.startsWith(' ') && line.endsWith(':')) {
      names = [];
      for (const spec of line.slice(0, -1).split(',')) {
        const s = spec.trim().replace(/^"|"$/g, '');
        // The name ends at the last @ that is not the scope's leading one.
        const at = s.lastIndexOf('@');
        const name = at > 0 ? s.slice(0, at) : s;
        if (name && !names.includes(name)) names.push(name);
      }
      continue;
    }
    const m = /^\s+version:?\s+"?([^"\s]+)"?\s*$/.exec(line);
    if (m && names.length > 0) {
      for (const name of names) out.push({ ecosystem: 'npm', source: 'yarn-lock', name, version: m[1]!, licenses: [] });
      names = [];
    }
  }
  return out;
}

/**
 * pnpm-lock.yaml: the keys of its `packages:` map name each resolved package. Their shape changed
 * between versions: `/name/1.0.0` (v5), `/name@1.0.0` (v6), `name@1.0.0` (v9), each with an optional
 * peer suffix `(peer@1)` or `_peer@1`.
 */
export function parsePnpmLock(text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let inPackages = false;
  let indent = -1;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const lead = line.length - line.trimStart().length;
    if (lead === 0) {
      inPackages = line.startsWith('packages:');
      indent = -1;
      continue;
    }
    if (!inPackages) continue;
    if (indent < 0) indent = lead;
    if (lead !== indent || !line.trimEnd().endsWith(':')) continue;
    const key = line.trim().slice(0, -1).replace(/^['"]|['"]$/g, '');
    const parsed = parsePnpmKey(key);
    if (parsed) out.push({ ecosystem: 'npm', source: 'pnpm-lock', name: parsed.name, version: parsed.version, licenses: [] });
  }
  return out;
}

function parsePnpmKey(key: string): { name: string; version: string } | undefined {
  const k = key.replace(/\(.*$/, '');
  const segs = (k.startsWith('/') ? k.slice(1) : k).split('/');
  const nameSegs = segs[0]!.startsWith('@') ? 2 : 1;
  let name: string;
  let version: string;
  if (k.startsWith('/') && segs.length === nameSegs + 1) {
    // v5: the version is its own path segment, peers appended after `_`.
    name = segs.slice(0, nameSegs).join('/');
    version = segs[nameSegs]!.replace(/_.*$/, '');
  } else if (segs.length === nameSegs) {
    const joined = segs.join('/');
    const at = joined.lastIndexOf('@');
    if (at <= 0) return undefined;
    name = joined.slice(0, at);
    version = joined.slice(at + 1);
  } else {
    return undefined;
  }
  if (name === '' || version === '' || version.includes(':')) return undefined;
  return { name, version };
}
