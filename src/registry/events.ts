/**
 * What the registry client tells its caller while it works. Library code never prints; the CLI
 * renders these. No event ever carries a credential or a token.
 */

export type RegistryEvent =
  /**
   * Bytes of a blob sent so far, and the rate of this attempt (bytes per second since it
   * started; an attempt resumed after a retry starts its own).
   */
  | { type: 'blob-upload-progress'; registry: string; repository: string; digest: string; sent: number; size: number; bytesPerSecond: number }
  | { type: 'blob-uploaded'; registry: string; repository: string; digest: string; size: number; method: 'monolithic' | 'chunked' | 'streamed' }
  | { type: 'blob-skipped'; registry: string; repository: string; digest: string; size: number }
  | { type: 'blob-mounted'; registry: string; repository: string; digest: string; size: number; from: string }
  /** Bytes of a blob received so far, and the rate since the download started. */
  | { type: 'blob-download-progress'; registry: string; repository: string; digest: string; received: number; size: number; bytesPerSecond: number }
  | { type: 'blob-downloaded'; registry: string; repository: string; digest: string; size: number }
  | { type: 'manifest-pushed'; registry: string; repository: string; digest: string; tag?: string }
  /** A request is about to be sent again. */
  | { type: 'retry'; registry: string; method: string; path: string; attempt: number; delayMs: number; reason: string }
  /** A token was fetched (never the token itself). */
  | { type: 'auth'; registry: string; scopes: string[]; source: string; scheme: 'bearer' | 'basic' }
  /** The upload strategy changed because the registry asked for it (chunk size, fallback). */
  | { type: 'upload-adjusted'; registry: string; repository: string; digest: string; reason: string };

export type EventSink = (event: RegistryEvent) => void;

/** Bytes per second of `bytes` moved since `startedMs` (performance.now()), rounded. */
export function rate(bytes: number, startedMs: number): number {
  return Math.round((bytes * 1000) / Math.max(1, performance.now() - startedMs));
}

/** Call a user's handler without letting its failure break a transfer. */
export function safeEmit(sink: EventSink | undefined, event: RegistryEvent): void {
  if (!sink) return;
  try {
    sink(event);
  } catch {
    // A progress renderer that throws must not fail a push.
  }
}
