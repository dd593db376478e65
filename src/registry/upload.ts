/**
 * Uploading one blob into a registry session (distribution spec "pushing blobs"):
 *
 * - small blobs: POST, then one PUT `?digest=` carrying the bytes (monolithic);
 * - large blobs: PATCH chunks, each with Content-Range and Content-Length, no larger than
 *   `chunkSize` (proxies cap requests) and no smaller than the registry's OCI-Chunk-Min-Length
 *   (ECR wants 5 MB), then an empty PUT `?digest=`;
 * - every answer's Location is the next URL (GCR hands out single-use ones), relative or absolute,
 *   possibly already carrying a query (`?_state=…`) to which `digest=` is appended;
 * - the offset is tracked by us: a PATCH answered 201 or with a stale Range (ECR) still moved it;
 * - a failed chunk resumes from the registry's own Range (GET on the session) instead of starting
 *   over; a lost session starts over; a 413 halves the chunk size;
 * - a registry that refuses chunks (400/405/415/501 on the first PATCH) gets the blob in one PUT.
 *
 * Bodies are streamed from the blob source; nothing is held in memory but the bytes in flight.
 */
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { ERROR_CODES, LadingError, isLadingError } from '../errors.ts';
import type { Descriptor } from '../image/types.ts';
import { rate, safeEmit } from './events.ts';
import { discard, type HttpResponse } from './http.ts';
import { pushScope, type Repo } from './pull.ts';
import { sleep, type Transport } from './transport.ts';

export interface UploadOptions {
  /** Most bytes in one request; blobs up to this size go in one PUT (default 64 MiB). */
  chunkSize: number;
  /** Extra scopes (a mount's source repository) the session was opened with. */
  scopes?: string[];
  /** Times to resume or restart after failures before giving up. */
  maxRetries: number;
}

export interface UploadResult {
  /** Body bytes sent, counting re-sent ones. */
  bytesSent: number;
  method: 'monolithic' | 'chunked';
}

export const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;
/** Chunk sizes never go below this when adapting to 413s. */
const MIN_ADAPTIVE_CHUNK = 1024 * 1024;

/** A session's URL from a Location header, relative or absolute. */
export function sessionUrl(location: string | null, base: URL, what: string): URL {
  if (!location) throw new LadingError(ERROR_CODES.REGISTRY, `the registry answered ${what} without a Location header`, { hint: 'the registry does not follow the distribution spec here' });
  return new URL(location, base);
}

/** `url` with `digest=` added to whatever query it already has. */
export function withDigestParam(url: URL, digest: string): URL {
  const u = new URL(url.href);
  u.searchParams.set('digest', digest);
  return u;
}

/** `0-1023` or `bytes=0-1023` → the last byte index; undefined when absent or malformed. */
export function parseRangeEnd(value: string | null): number | undefined {
  const m = value?.match(/^(?:bytes=)?(\d+)-(\d+)$/);
  return m ? Number(m[2]) : undefined;
}

class UploadRestart extends Error {}

export class BlobUploader {
  private bytesSent = 0;
  private chunkSize: number;

  constructor(
    private readonly t: Transport,
    private readonly target: Repo,
    private readonly desc: Descriptor,
    private readonly open: () => Promise<Readable>,
    private readonly options: UploadOptions,
  ) {
    this.chunkSize = options.chunkSize;
  }

  private get scopes(): string[] {
    return [pushScope(this.target.repository), ...(this.options.scopes ?? [])];
  }

  private adjusted(reason: string): void {
    safeEmit(this.t.onEvent, { type: 'upload-adjusted', registry: this.target.registry, repository: this.target.repository, digest: this.desc.digest, reason });
  }

  /** Upload, starting from `session` when a mount attempt already opened one. */
  async run(session?: { url: URL; minChunk?: number }): Promise<UploadResult> {
    let failures = 0;
    let forceMonolithic = false;
    for (;;) {
      // Opening a session is retried by the transport already; only the transfer restarts here.
      const s = session ?? (await this.startSession());
      session = undefined;
      try {
        const chunked = !forceMonolithic && this.desc.size > this.chunkSize;
        if (chunked) {
          const outcome = await this.chunked(s.url, s.minChunk);
          if (outcome === 'rejected') {
            forceMonolithic = true;
            continue;
          }
        } else await this.monolithic(s.url);
        safeEmit(this.t.onEvent, { type: 'blob-uploaded', registry: this.target.registry, repository: this.target.repository, digest: this.desc.digest, size: this.desc.size, method: chunked ? 'chunked' : 'monolithic' });
        return { bytesSent: this.bytesSent, method: chunked ? 'chunked' : 'monolithic' };
      } catch (err) {
        // A proxy or registry capping request size: go on in chunks below the cap.
        if (isLadingError(err) && err.details.status === 413 && Math.min(this.chunkSize, this.desc.size) > MIN_ADAPTIVE_CHUNK) {
          this.chunkSize = Math.max(MIN_ADAPTIVE_CHUNK, Math.floor(Math.min(this.chunkSize, this.desc.size) / 2));
          this.adjusted(`request too large (HTTP 413); chunks of ${this.chunkSize} bytes now`);
          continue;
        }
        if (!this.worthRestarting(err) || ++failures > this.options.maxRetries) throw err instanceof UploadRestart ? this.gaveUp(err) : err;
        await sleep(Math.min(10_000, 200 * 2 ** failures), this.t.signal);
      }
    }
  }

  private worthRestarting(err: unknown): boolean {
    if (err instanceof UploadRestart) return true;
    if (!isLadingError(err)) return false;
    if (err.code !== ERROR_CODES.REGISTRY) return false;
    const status = err.details.status as number | undefined;
    // No answer (a dropped connection) or a server failure: a new session may do better.
    return status === undefined || status >= 500 || status === 408 || status === 429;
  }

  private gaveUp(err: Error): LadingError {
    return new LadingError(ERROR_CODES.REGISTRY, `cannot push blob ${this.desc.digest} to ${this.target.registry}/${this.target.repository}: ${err.message}`, {
      hint: 'the upload kept failing; check the network or the registry, then push again (finished blobs are skipped)',
    });
  }

  async startSession(): Promise<{ url: URL; minChunk?: number }> {
    const path = `/v2/${this.target.repository}/blobs/uploads/`;
    const res = await this.t.request({
      registry: this.target.registry,
      method: 'POST',
      path,
      scopes: this.scopes,
      action: `start an upload to ${this.target.repository}`,
      accept: (s) => s === 202,
    });
    discard(res);
    const base = new URL(path, (await this.t.endpoint(this.target.registry)).origin);
    return { url: sessionUrl(res.headers.get('location'), base, 'an upload start'), minChunk: chunkMin(res) };
  }

  private progress(offset: number): Transform {
    let sent = 0;
    const started = performance.now();
    const { t, target, desc } = this;
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        sent += chunk.length;
        this.bytesSent += chunk.length;
        safeEmit(t.onEvent, { type: 'blob-upload-progress', registry: target.registry, repository: target.repository, digest: desc.digest, sent: offset + sent, size: desc.size, bytesPerSecond: rate(sent, started) });
        cb(null, chunk);
      },
    });
  }

  private async monolithic(url: URL): Promise<void> {
    const res = await this.t.request({
      registry: this.target.registry,
      method: 'PUT',
      path: withDigestParam(url, this.desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(this.desc.size) },
      body: async () => {
        return through(await this.open(), this.progress(0));
      },
      scopes: this.scopes,
      action: `push blob ${this.desc.digest} to ${this.target.repository}`,
      // A half-sent PUT may have appended to the session; only a new session is safe to retry.
      retry: false,
      minTokenValidityMs: 60_000,
      accept: (s) => s >= 200 && s < 300,
    });
    discard(res);
    this.checkDigest(res);
  }

  /** Returns 'rejected' when the registry will not take chunks at all. */
  private async chunked(start: URL, minChunk: number | undefined): Promise<'done' | 'rejected'> {
    let url = start;
    let offset = 0;
    let reader: SequentialReader | undefined;
    let failures = 0;
    let staleRangeSeen = false;
    if (minChunk && minChunk > this.chunkSize) {
      this.chunkSize = minChunk;
      this.adjusted(`chunks of ${minChunk} bytes, the registry's minimum`);
    }
    try {
      while (offset < this.desc.size) {
        if (!reader) {
          reader = new SequentialReader(await this.open());
          await reader.skip(offset);
        }
        const len = Math.min(this.chunkSize, this.desc.size - offset);
        let res: HttpResponse;
        try {
          let sends = 0;
          const from = offset;
          res = await this.t.request({
            registry: this.target.registry,
            method: 'PATCH',
            path: url,
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(len), 'content-range': `${offset}-${offset + len - 1}` },
            // A re-send (after a 401) needs the same bytes again: reopen the blob at this chunk.
            body: async () => {
              if (sends++ > 0) {
                reader?.destroy();
                reader = new SequentialReader(await this.open());
                await reader.skip(from);
              }
              return through(reader!.take(len), this.progress(from));
            },
            scopes: this.scopes,
            action: `push blob ${this.desc.digest} to ${this.target.repository} (bytes ${offset}-${offset + len - 1})`,
            retry: false,
            minTokenValidityMs: 60_000,
            accept: () => true,
          });
        } catch (err) {
          if (isLadingError(err) && err.code !== ERROR_CODES.REGISTRY) throw err;
          if (++failures > this.options.maxRetries) throw err;
          reader.destroy();
          reader = undefined;
          ({ url, offset } = await this.resume(url, offset, failures));
          continue;
        }
        if (res.status >= 200 && res.status < 300) {
          discard(res);
          url = res.headers.get('location') ? sessionUrl(res.headers.get('location'), url, 'a chunk') : url;
          // Trust our own count: ECR answers with a Range that does not advance.
          const end = parseRangeEnd(res.headers.get('range'));
          if (end !== undefined && end < offset + len - 1 && !staleRangeSeen) {
            staleRangeSeen = true;
            this.adjusted(`the registry reported bytes 0-${end} after a chunk ending at ${offset + len - 1}; keeping our own offset`);
          }
          offset += len;
          continue;
        }
        if (offset === 0 && [400, 405, 415, 501].includes(res.status)) {
          discard(res);
          this.adjusted(`the registry refused a chunk (HTTP ${res.status}); uploading the blob in one request`);
          return 'rejected';
        }
        if (res.status === 413 && this.chunkSize > Math.max(MIN_ADAPTIVE_CHUNK, minChunk ?? 0)) {
          discard(res);
          this.chunkSize = Math.max(MIN_ADAPTIVE_CHUNK, minChunk ?? 0, Math.floor(this.chunkSize / 2));
          this.adjusted(`request too large (HTTP 413); chunks of ${this.chunkSize} bytes now`);
          reader.destroy();
          reader = undefined;
          ({ url, offset } = await this.resume(url, offset, failures));
          continue;
        }
        if ((res.status === 416 || res.status >= 500 || res.status === 408 || res.status === 429) && ++failures <= this.options.maxRetries) {
          discard(res);
          reader.destroy();
          reader = undefined;
          ({ url, offset } = await this.resume(url, offset, failures));
          continue;
        }
        throw await this.t.failure({ action: `push blob ${this.desc.digest} to ${this.target.repository}`, scopes: this.scopes }, res, this.target.registry);
      }
      // Read past the last byte so the source's digest check runs before we commit.
      if (reader) await reader.finish();
    } finally {
      reader?.destroy();
    }
    const res = await this.t.request({
      registry: this.target.registry,
      method: 'PUT',
      path: withDigestParam(url, this.desc.digest),
      headers: { 'content-length': '0' },
      scopes: this.scopes,
      action: `finish blob ${this.desc.digest} in ${this.target.repository}`,
      retry: true,
    });
    discard(res);
    this.checkDigest(res);
    return 'done';
  }

  /** After a failed chunk: where the registry says the session stands, or a restart. */
  private async resume(url: URL, offset: number, failures: number): Promise<{ url: URL; offset: number }> {
    await sleep(Math.min(5000, 100 * 2 ** failures), this.t.signal);
    let res: HttpResponse;
    try {
      res = await this.t.request({
        registry: this.target.registry,
        method: 'GET',
        path: url,
        scopes: this.scopes,
        action: `check upload of ${this.desc.digest}`,
        accept: () => true,
      });
    } catch (err) {
      throw new UploadRestart((err as Error).message);
    }
    discard(res);
    if (res.status !== 204 && res.status !== 200 && res.status !== 202) throw new UploadRestart(`the upload session was lost (HTTP ${res.status})`);
    const end = parseRangeEnd(res.headers.get('range'));
    const next = res.headers.get('location') ? sessionUrl(res.headers.get('location'), url, 'an upload status') : url;
    // The registry's Range is the truth about what it kept, unless it is ahead of what we sent.
    // `0-0` is what an empty session reports too (Distribution does): read it as nothing stored.
    const resumeAt = end === undefined || end === 0 ? 0 : Math.min(end + 1, this.desc.size);
    if (resumeAt > offset + this.chunkSize) throw new UploadRestart('the registry reports more bytes than were sent');
    this.adjusted(`resuming at byte ${resumeAt}`);
    return { url: next, offset: resumeAt };
  }

  private checkDigest(res: HttpResponse): void {
    const got = res.headers.get('docker-content-digest');
    if (got && got !== this.desc.digest) {
      throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${this.target.registry} stored blob ${this.desc.digest} as ${got}`, {
        hint: 'the bytes changed on the way (a proxy rewriting bodies?); the push was stopped before any tag was written',
      });
    }
  }
}

function chunkMin(res: HttpResponse): number | undefined {
  const v = Number(res.headers.get('oci-chunk-min-length'));
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Hands out consecutive slices of one stream as separate streams. */
class SequentialReader {
  private readonly it: AsyncIterator<Buffer>;
  private leftover: Buffer | undefined;

  constructor(private readonly source: Readable) {
    this.it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  private async nextBytes(max: number): Promise<Buffer> {
    let buf = this.leftover;
    this.leftover = undefined;
    if (!buf) {
      const r = await this.it.next();
      if (r.done) throw new LadingError(ERROR_CODES.STORE, 'the blob ended before its declared size');
      buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
    if (buf.length > max) {
      this.leftover = buf.subarray(max);
      return buf.subarray(0, max);
    }
    return buf;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) left -= (await this.nextBytes(left)).length;
  }

  take(n: number): Readable {
    const self = this;
    async function* slice(): AsyncGenerator<Buffer> {
      let left = n;
      while (left > 0) {
        const b = await self.nextBytes(Math.min(left, 1024 * 1024));
        left -= b.length;
        yield b;
      }
    }
    return Readable.from(slice(), { objectMode: false });
  }

  async finish(): Promise<void> {
    if (this.leftover?.length) throw new LadingError(ERROR_CODES.STORE, 'the blob is longer than its declared size');
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      if (r.value.length) throw new LadingError(ERROR_CODES.STORE, 'the blob is longer than its declared size');
    }
  }

  destroy(): void {
    this.source.destroy();
  }
}

/** `src` piped into `transform`; an error on either side ends both (and closes the blob's file). */
function through(src: Readable, transform: Transform): Readable {
  return pipeline(src, transform, () => {});
}
