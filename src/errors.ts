/**
 * The one error class lading throws on purpose. Every failure a user can act on carries a stable
 * `code` (mapped to an exit status by the CLI), a message for people, an optional source location
 * and a hint saying what to do next.
 */

/** Stable error codes. Add new ones at the end; never rename one (scripts match on them). */
export const ERROR_CODES = {
  /** The command line or library options are wrong. */
  USAGE: 'USAGE',
  /** The Dockerfile cannot be read or parsed. */
  DOCKERFILE_PARSE: 'DOCKERFILE_PARSE',
  /** The Dockerfile parses but means something we cannot build (unknown stage, cycle, ...). */
  DOCKERFILE_INVALID: 'DOCKERFILE_INVALID',
  /** The build context is missing, unreadable, or a source escapes it. */
  CONTEXT: 'CONTEXT',
  /** A `.dockerignore` pattern is malformed. */
  DOCKERIGNORE: 'DOCKERIGNORE',
  /** Content did not match the digest that names it. */
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  /** The local store holds something it should not (a corrupt blob, a bad index record). */
  STORE: 'STORE',
  /** A tar archive is malformed or tries to write outside its root. */
  TAR: 'TAR',
  /** An image, manifest or config is malformed or unsupported. */
  IMAGE: 'IMAGE',
  /** An image reference (name:tag@digest) is malformed. */
  REFERENCE: 'REFERENCE',
  /** The registry refused our credentials or gave none we could use. */
  REGISTRY_AUTH: 'REGISTRY_AUTH',
  /** The registry answered with an error, or we could not reach it. */
  REGISTRY: 'REGISTRY',
  /** A RUN step exited non-zero. */
  RUN_FAILED: 'RUN_FAILED',
  /** No sandbox can execute RUN steps on this machine. */
  SANDBOX: 'SANDBOX',
  /** Writing an output (OCI folder, tarball) failed. */
  OUTPUT: 'OUTPUT',
  /** The build was cancelled (AbortSignal, SIGINT, SIGTERM). */
  INTERRUPTED: 'INTERRUPTED',
  /** A bug in lading: something that should never happen did. */
  INTERNAL: 'INTERNAL',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Where in a source file a problem is. Lines and columns are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
  /** The text of the offending line, shown under the message. */
  text?: string;
}

export interface LadingErrorOptions {
  hint?: string;
  location?: SourceLocation;
  cause?: unknown;
  /** Further problems found in the same pass (the Dockerfile front end reports several at once). */
  related?: LadingError[];
  /** Extra machine-readable facts (exit code of a RUN, HTTP status, ...). */
  details?: Record<string, unknown>;
}

export class LadingError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly location?: SourceLocation;
  readonly related: LadingError[];
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: LadingErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LadingError';
    this.code = code;
    this.hint = options.hint;
    this.location = options.location;
    this.related = options.related ?? [];
    this.details = options.details ?? {};
  }

  /** `file:line:col: message` for one-line display. */
  headline(): string {
    const where = this.location ? `${formatLocation(this.location)}: ` : '';
    return `${where}${this.message}`;
  }

  /** The full text for people: headline, the offending line, the hint, and related problems. */
  describe(): string {
    const parts: string[] = [];
    for (const err of [this as LadingError, ...this.related]) {
      parts.push(err.headline());
      if (err.location?.text !== undefined) parts.push(`  | ${err.location.text}`);
      if (err.hint) parts.push(`  hint: ${err.hint}`);
    }
    return parts.join('\n');
  }
}

export function formatLocation(loc: SourceLocation): string {
  return loc.column === undefined ? `${loc.file}:${loc.line}` : `${loc.file}:${loc.line}:${loc.column}`;
}

export function isLadingError(err: unknown): err is LadingError {
  return err instanceof LadingError;
}

/** Wrap a Node system error (ENOENT, EACCES, ...) with the path it concerns. */
export function fsError(code: ErrorCode, action: string, path: string, cause: unknown, hint?: string): LadingError {
  const sys = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = sys === 'ENOENT' ? 'it does not exist' : sys === 'EACCES' || sys === 'EPERM' ? 'permission denied' : sys ?? String(cause);
  return new LadingError(code, `cannot ${action} ${path}: ${why}`, { cause, hint });
}

/** Throw INTERRUPTED if the signal was aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new LadingError(ERROR_CODES.INTERRUPTED, 'the build was cancelled', { cause: signal.reason });
  }
}
