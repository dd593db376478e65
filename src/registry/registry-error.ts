/**
 * Turning a registry's answer into a LadingError people can act on: the registry's own error code
 * and message (from the `{"errors": [...]}` body the distribution spec defines), the status, the
 * host, and a hint. Everything is passed through `redact` so no secret can ride along.
 */
import { ERROR_CODES, LadingError, type ErrorCode } from '../errors.ts';

export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** Parse the spec's error body; anything else becomes one entry holding the start of the text. */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  try {
    const doc = JSON.parse(trimmed) as { errors?: unknown; error?: unknown; message?: unknown; details?: unknown };
    if (Array.isArray(doc.errors)) {
      return doc.errors.map((e: { code?: unknown; message?: unknown; detail?: unknown }) => ({
        code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
        message: typeof e.message === 'string' ? e.message : '',
        detail: e.detail,
      }));
    }
    // Token servers answer OAuth2-style: {"error": "...", "error_description": "..."} or {"details": "..."}.
    const d = doc as Record<string, unknown>;
    const message = [d.error_description, d.message, d.details].find((v) => typeof v === 'string') as string | undefined;
    if (typeof d.error === 'string' || message) return [{ code: typeof d.error === 'string' ? d.error : 'UNKNOWN', message: message ?? '' }];
  } catch {
    // not JSON
  }
  return [{ code: 'UNKNOWN', message: trimmed.replace(/\s+/g, ' ').slice(0, 300) }];
}

export function describeEntries(entries: RegistryErrorEntry[]): string {
  return entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
}

/** Replace every occurrence of each secret (and its base64 forms) with `***`. */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    for (const form of [s, Buffer.from(s).toString('base64'), encodeURIComponent(s)]) out = out.split(form).join('***');
  }
  return out;
}

export interface RegistryErrorInput {
  /** What we were doing, e.g. `push blob sha256:ab… to ghcr.io/acme/app`. */
  action: string;
  host: string;
  status?: number;
  entries?: RegistryErrorEntry[];
  hint?: string;
  cause?: unknown;
  code?: ErrorCode;
  extra?: Record<string, unknown>;
}

export function registryError(input: RegistryErrorInput, secrets: Iterable<string> = []): LadingError {
  const entries = input.entries ?? [];
  const status = input.status;
  const code = input.code ?? (status === 401 || status === 403 ? ERROR_CODES.REGISTRY_AUTH : ERROR_CODES.REGISTRY);
  const said = entries.length ? `: ${describeEntries(entries)}` : '';
  const where = status !== undefined ? `${input.host} answered HTTP ${status}` : input.host;
  const message = redact(`cannot ${input.action}: ${where}${said}`, secrets);
  return new LadingError(code, message, {
    hint: input.hint ?? hintFor(status, entries[0]?.code),
    // The cause of a network failure is a system error without secrets; a registry answer has none.
    cause: input.cause,
    details: { status, registryCode: entries[0]?.code, registryErrors: entries.map((e) => ({ code: e.code, message: redact(e.message, secrets) })), host: input.host, ...input.extra },
  });
}

function hintFor(status: number | undefined, code: string | undefined): string | undefined {
  if (code === 'NAME_UNKNOWN') return 'the repository does not exist; some registries (ECR, and Harbor projects) need it created before the first push';
  if (code === 'DENIED' || status === 403) return 'the credential is valid but lacks permission for this repository (check its scopes or the repository settings)';
  if (status === 401) return 'log in (docker login / LADING_REGISTRY_AUTH) or check that the credential is still valid';
  if (status === 404) return 'check the repository name, tag or digest';
  if (status === 429) return 'the registry is rate-limiting; wait, log in for a higher limit, or lower concurrency';
  if (status !== undefined && status >= 500) return 'the registry failed; try again later';
  return undefined;
}
