/**
 * Package URLs (https://github.com/package-url/purl-spec, docs/standard/specification.md): the
 * canonical string for each ecosystem the scanner knows. Every component is percent-encoded except
 * letters, digits, `.-_~` and `:`; qualifiers are sorted by key and empty ones dropped, so one
 * package always has one purl.
 */

export interface PurlParts {
  type: string;
  namespace?: string;
  name: string;
  version?: string;
  qualifiers?: Record<string, string | undefined>;
  subpath?: string;
}

/** Percent-encode one component the way the purl spec's "Character encoding" clause says. */
export function purlEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9.\-_~:]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function formatPurl(p: PurlParts): string {
  let s = `pkg:${p.type.toLowerCase()}/`;
  const namespace = (p.namespace ?? '').split('/').filter(Boolean);
  if (namespace.length > 0) s += `${namespace.map(purlEncode).join('/')}/`;
  s += purlEncode(p.name);
  if (p.version) s += `@${purlEncode(p.version)}`;
  const qualifiers = Object.entries(p.qualifiers ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (qualifiers.length > 0) s += `?${qualifiers.map(([k, v]) => `${k.toLowerCase()}=${purlEncode(v)}`).join('&')}`;
  const subpath = (p.subpath ?? '').split('/').filter((seg) => seg !== '' && seg !== '.' && seg !== '..');
  if (subpath.length > 0) s += `#${subpath.map(purlEncode).join('/')}`;
  return s;
}

/** `distro` qualifier: `debian-12`, `alpine-3.19.1`; the codename when a release has no number (sid). */
export function distroQualifier(distro: { id: string; versionId?: string; codename?: string } | undefined): string | undefined {
  if (!distro) return undefined;
  const v = distro.versionId ?? distro.codename;
  return v ? `${distro.id}-${v}` : distro.id;
}

export function debPurl(name: string, version: string, arch: string | undefined, distro: { id: string; versionId?: string; codename?: string } | undefined): string {
  return formatPurl({
    type: 'deb',
    namespace: distro?.id ?? 'debian',
    name: name.toLowerCase(),
    version,
    qualifiers: { arch, distro: distroQualifier(distro) },
  });
}

export function apkPurl(name: string, version: string, arch: string | undefined, distro: { id: string; versionId?: string; codename?: string } | undefined): string {
  return formatPurl({
    type: 'apk',
    namespace: distro?.id ?? 'alpine',
    name: name.toLowerCase(),
    version,
    qualifiers: { arch, distro: distroQualifier(distro) },
  });
}

/** npm: a scope is the namespace (`@angular/core` → `pkg:npm/%40angular/core@…`); names are lowercase. */
export function npmPurl(name: string, version: string | undefined): string {
  const lower = name.toLowerCase();
  const slash = lower.startsWith('@') ? lower.indexOf('/') : -1;
  if (slash > 0) return formatPurl({ type: 'npm', namespace: lower.slice(0, slash), name: lower.slice(slash + 1), version });
  return formatPurl({ type: 'npm', name: lower, version });
}

/** PEP 503 normalisation: runs of `-`, `_` and `.` become one `-`, all lowercase. */
export function normalizePythonName(name: string): string {
  return name.replace(/[-_.]+/g, '-').toLowerCase();
}

export function pypiPurl(name: string, version: string | undefined): string {
  return formatPurl({ type: 'pypi', name: normalizePythonName(name), version });
}

/** golang: everything before the module path's last element is the namespace. */
export function golangPurl(modulePath: string, version: string | undefined): string {
  const slash = modulePath.lastIndexOf('/');
  const usable = version && version !== '(devel)' ? version : undefined;
  if (slash < 0) return formatPurl({ type: 'golang', name: modulePath, version: usable });
  return formatPurl({ type: 'golang', namespace: modulePath.slice(0, slash), name: modulePath.slice(slash + 1), version: usable });
}
