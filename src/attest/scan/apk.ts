/**
 * Alpine packages from apk's database, `/lib/apk/db/installed`: one block per package, one
 * `X:value` line per field (P name, V version, A architecture, L licence, o origin), blocks
 * separated by blank lines.
 */
import type { FoundPackage } from './found.ts';

export function parseApkInstalled(text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let fields = new Map<string, string>();
  const flush = (): void => {
    const name = fields.get('P');
    const version = fields.get('V');
    if (name && version) {
      const pkg: FoundPackage = { ecosystem: 'apk', source: 'apk-installed', name, version, licenses: [] };
      const arch = fields.get('A');
      if (arch) pkg.architecture = arch;
      const license = fields.get('L');
      if (license) pkg.licenses.push(license);
      const origin = fields.get('o');
      if (origin && origin !== name) pkg.sourceName = origin;
      out.push(pkg);
    }
    fields = new Map();
  };
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') {
      flush();
      continue;
    }
    // Only the first of repeated single-letter keys matters to us (F:/R: repeat for files).
    if (line.length >= 2 && line[1] === ':' && !fields.has(line[0]!)) fields.set(line[0]!, line.slice(2));
  }
  flush();
  return out;
}
