/**
 * Times in attestations: RFC 3339 UTC to the second (`2024-01-02T03:04:05Z`), the form both SPDX
 * 2.3 and in-toto require, and the one SOURCE_DATE_EPOCH maps to in reproducible builds.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';

/** Normalise a time (ISO string, Date, or seconds since the epoch) to `YYYY-MM-DDThh:mm:ssZ`. */
export function attestationTimestamp(time: string | number | Date): string {
  const date = typeof time === 'number' ? new Date(time * 1000) : typeof time === 'string' ? new Date(time) : time;
  if (Number.isNaN(date.getTime())) {
    throw new LadingError(ERROR_CODES.USAGE, `invalid attestation time ${JSON.stringify(String(time))}`, {
      hint: 'give an ISO 8601 time such as 2024-01-02T03:04:05Z, or set SOURCE_DATE_EPOCH to whole seconds',
    });
  }
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** SOURCE_DATE_EPOCH from `env` as seconds, or undefined when unset; a malformed value is a usage error. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) {
    throw new LadingError(ERROR_CODES.USAGE, `SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a whole number of seconds`, {
      hint: 'set it to a Unix time, for example SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)',
    });
  }
  return Number(raw.trim());
}
