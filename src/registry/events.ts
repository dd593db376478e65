/**
 * What the registry client tells its caller while it works. Library code never prints; the CLI
 * renders these. No event ever carries a credential or a token.
 */

export type RegistryEvent =
  /** Bytes of a blob sent so far (`sent` counts this attempt's bytes from `offset`). */
  | { type: 'blob-upload-progress'; registry: string; repository: string; digest: string; sent: number; size: number }
  | { type: 'blob-uploaded'; registry: string; repository: string; digest: string; size: number; method: 'monolithic' | 'chunked' | 'streamed' }
  | { type: 'blob-skipped'; registry: string; repository: string; digest: string; size: number }
  | { type: 'blob-mounted'; registry: string; repository: string; digest: string; size: number; from: string }
  | { type: 'blob-download-progress'; registry: string; repository: string; digest: string; received: number; size: number }
  | { type: 'blob-downloaded'; registry: string; repository: string; digest: string; size: number }
  | { type: 'manifest-pushed'; registry: string; repository: string; digest: string; tag?: string }
  /** A request is about to be sent again. */
  | { type: 'retry'; registry: string; method: string; path: string; attempt: number; delayMs: number; reason: string }
  /** A token was fetched (never the token itself). */
  | { type: 'auth'; registry: string; scopes: string[]; source: string; scheme: 'bearer' | 'basic' }
  /** The upload strategy changed because the registry asked for it (chunk size, fallback). */
  | { type: 'upload-adjusted'; registry: string; repository: string; digest: string; reason: string };

export type EventSink = (event: RegistryEvent) => void;

/** Call a user's handler without letting its failure break a transfer. */
export function safeEmit(sink: EventSink | undefined, event: RegistryEvent): void {
  if (!sink) return;
  try {
    sink(event);
  } catch {
    // A progress renderer that throws must not fail a push.
  }
}
