/**
 * Cache keys. One function computes a step's key, for lookup and for store alike: the parent
 * key, the step's canonical expanded instruction (with the build args it uses), the digests of
 * what it reads, and the layer settings that change its bytes. Nothing here may depend on time,
 * host paths or file mtimes.
 */
import { sha256 } from '../image/digest.ts';
import { canonicalJSON } from '../image/json.ts';
import type { Compression } from '../image/mediatypes.ts';

/** Bump when the meaning of a key changes, so old cache entries are never misread. */
export const KEY_VERSION = 'lading-cache-v1';

export interface LayerSettings {
  compression: Compression;
  level: number;
  /** SOURCE_DATE_EPOCH (0 by default): it is in every mtime we write. */
  epoch: number;
}

export function baseKey(kind: 'scratch' | 'image', identity: string, platform: string): string {
  return sha256(canonicalJSON({ v: KEY_VERSION, base: kind, identity, platform }));
}

export function stepKey(parent: string, step: string, inputs: readonly string[], settings: LayerSettings): string {
  return sha256(canonicalJSON({ v: KEY_VERSION, parent, step, inputs: sha256(inputs.join('\n')), settings }));
}
