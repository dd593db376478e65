/**
 * Canonical JSON: object keys sorted by code point at every level, no insignificant white space.
 * Every document lading writes goes through here, so the same value always has the same bytes
 * and therefore the same digest.
 */
export function canonicalJSON(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJSON(value), 'utf8');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}
