/** The distribution an image is built on, from os-release(5): `KEY=value` lines, values maybe quoted. */
import type { DistroInfo } from './types.ts';

export function parseOsRelease(text: string): DistroInfo | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    fields.set(m[1]!, value);
  }
  const id = fields.get('ID')?.toLowerCase();
  if (!id) return undefined;
  const info: DistroInfo = { id };
  const versionId = fields.get('VERSION_ID');
  if (versionId) info.versionId = versionId;
  const codename = fields.get('VERSION_CODENAME');
  if (codename) info.codename = codename;
  const pretty = fields.get('PRETTY_NAME');
  if (pretty) info.prettyName = pretty;
  return info;
}
