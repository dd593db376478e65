/**
 * Python distributions: `*.dist-info/METADATA` (wheels, pip) and `*.egg-info/PKG-INFO` or a
 * `*.egg-info` file (setuptools, Debian's python3-* packages). Both are core metadata: RFC 822
 * headers up to the first blank line, then the description, which we never read.
 */
import type { FoundPackage } from './found.ts';

export function pythonMetadataKind(path: string): 'python-dist-info' | 'python-egg-info' | undefined {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const parent = path.slice(path.lastIndexOf('/', slash - 1) + 1, slash);
  if (base === 'METADATA' && parent.endsWith('.dist-info')) return 'python-dist-info';
  if (base === 'PKG-INFO' && parent.endsWith('.egg-info')) return 'python-egg-info';
  if (base.endsWith('.egg-info')) return 'python-egg-info';
  return undefined;
}

/** The header block of core metadata, multi-valued fields kept in order. */
function parseHeaders(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') break;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      last[last.length - 1] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    let values = fields.get(key);
    if (!values) fields.set(key, (values = []));
    values.push(line.slice(colon + 1).trim());
    last = values;
  }
  return fields;
}

export function parsePythonMetadata(text: string, source: 'python-dist-info' | 'python-egg-info'): FoundPackage | undefined {
  const h = parseHeaders(text);
  const name = h.get('name')?.[0];
  const version = h.get('version')?.[0];
  if (!name || !version) return undefined;
  const pkg: FoundPackage = { ecosystem: 'pypi', source, name, version, licenses: [] };
  const expression = h.get('license-expression')?.[0];
  if (expression) pkg.licenseExpression = expression;
  const license = h.get('license')?.[0];
  if (license && license !== 'UNKNOWN') pkg.licenses.push(license);
  const classifiers = (h.get('classifier') ?? []).filter((c) => c.startsWith('License ::'));
  if (classifiers.length > 0) pkg.licenseClassifiers = classifiers;
  return pkg;
}
