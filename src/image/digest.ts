import { createHash } from 'node:crypto';
import { ERROR_CODES, LadingError } from '../errors.ts';

const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/** Check a digest string and return it; throws with the given context when malformed. */
export function parseDigest(value: string, context = 'digest'): string {
  if (!isDigest(value)) {
    throw new LadingError(ERROR_CODES.IMAGE, `invalid ${context} "${value}"`, {
      hint: 'a digest is "sha256:" followed by 64 lowercase hex characters',
    });
  }
  return value;
}

/** The hex part of `sha256:<hex>`. */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestAlgorithm(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}
