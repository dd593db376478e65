/**
 * Debian and Ubuntu packages: the dpkg database (`/var/lib/dpkg/status`, or one file per package
 * in `status.d/` as distroless images have it) and the machine-readable copyright files
 * (DEP-5, https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) for licences.
 */
import type { FoundPackage } from './found.ts';

/** deb822 paragraphs: `Key: value` fields, continuation lines indented, paragraphs split by blank lines. */
export function parseDeb822(text: string): Map<string, string>[] {
  const paragraphs: Map<string, string>[] = [];
  let current = new Map<string, string>();
  let lastKey: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === '') {
      if (current.size > 0) paragraphs.push(current);
      current = new Map();
      lastKey = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (lastKey !== undefined) current.set(lastKey, `${current.get(lastKey)}\n${line.slice(1)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastKey = line.slice(0, colon).trim();
    // Field names are case-insensitive; keep the first spelling's value under its canonical case.
    current.set(canonicalField(lastKey), line.slice(colon + 1).trim());
    lastKey = canonicalField(lastKey);
  }
  if (current.size > 0) paragraphs.push(current);
  return paragraphs;
}

function canonicalField(key: string): string {
  return key.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

// Package states in which the package's files are on disk (dpkg(1), "Package states").
const PRESENT_STATES = new Set(['installed', 'half-configured', 'unpacked', 'half-installed', 'triggers-awaited', 'triggers-pending']);

/** Installed packages in a dpkg status file (or a status.d entry). */
export function parseDpkgStatus(text: string, source: 'dpkg-status' | 'dpkg-status.d'): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const p of parseDeb822(text)) {
    const name = p.get('Package');
    const version = p.get('Version');
    if (!name || !version) continue;
    // status.d entries carry no Status field: their presence means installed.
    const status = p.get('Status');
    if (status !== undefined && !PRESENT_STATES.has(status.split(/\s+/).pop() ?? '')) continue;
    const pkg: FoundPackage = { ecosystem: 'deb', source, name, version, licenses: [] };
    const arch = p.get('Architecture');
    if (arch) pkg.architecture = arch;
    const src = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(p.get('Source') ?? '');
    if (src) {
      if (src[1] !== name) pkg.sourceName = src[1];
      if (src[2] && src[2] !== version) pkg.sourceVersion = src[2];
    }
    out.push(pkg);
  }
  return out;
}

/**
 * Licence short names from a machine-readable copyright file, in order of first appearance; an
 * empty list for free-form files (they name no licence a machine can trust).
 */
export function parseCopyrightLicenses(text: string): string[] {
  const paragraphs = parseDeb822(text);
  const header = paragraphs[0];
  if (!header || !/copyright-format|dep5/i.test(header.get('Format') ?? header.get('Format-Specification') ?? '')) return [];
  const seen = new Set<string>();
  for (const p of paragraphs) {
    // Only the first line is the name; what follows is the licence text.
    const first = (p.get('License') ?? '').split('\n')[0]!.trim();
    if (first !== '') seen.add(first);
  }
  return [...seen];
}
