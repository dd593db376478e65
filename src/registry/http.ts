/**
 * The one place bytes go on the wire. A tiny request/response interface with two adapters,
 * node-fetch (the default, chosen by measurement: docs/decisions.md) and Node's own fetch
 * (undici), so the transport above never knows which one runs. Redirects are never followed
 * here: the transport follows them itself so credentials never leave for another host.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import tls from 'node:tls';
import type { RequestInit as NodeFetchInit } from 'node-fetch';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';

// Loaded on the first request: node-fetch and its dependencies take ~25 ms to load, a twentieth
// of a no-op rebuild, and a build from scratch to a folder never talks to a registry.
let fetchModuleLoading: Promise<typeof import('node-fetch')> | undefined;
function fetchModule(): Promise<typeof import('node-fetch')> {
  fetchModuleLoading ??= import('node-fetch');
  return fetchModuleLoading;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** A Buffer, or a stream that is consumed once (the transport makes a fresh one per attempt). */
  body?: Buffer | Readable;
  signal?: AbortSignal;
  /** Skip certificate verification (only for hosts the user named insecure). */
  insecureTLS?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: { get(name: string): string | null };
  /** Always a stream; empty for HEAD. Read it, or call `discard()` to free the connection. */
  body: Readable;
}

export interface HttpClient {
  readonly name: string;
  send(req: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

export interface HttpClientOptions {
  /** PEM file with extra certificate authorities to trust (added to Node's built-in list). */
  caFile?: string;
  /** Upper bound of open connections per host. */
  maxSockets?: number;
}

export type HttpClientKind = 'node-fetch' | 'undici';

export function createHttpClient(kind: HttpClientKind = 'node-fetch', options: HttpClientOptions = {}): HttpClient {
  return kind === 'undici' ? new UndiciClient(options) : new NodeFetchClient(options);
}

export async function readBody(res: HttpResponse, limit = 4 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      res.body.destroy();
      throw new LadingError(ERROR_CODES.REGISTRY, `the registry sent more than ${limit} bytes where a small document was expected`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Drop a response body we do not need, so its connection goes back to the pool. */
export function discard(res: HttpResponse): void {
  res.body.resume();
  res.body.on('error', () => {});
}

function loadCA(caFile: string | undefined): string[] | undefined {
  if (!caFile) return undefined;
  try {
    return [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
  } catch (err) {
    throw fsError(ERROR_CODES.USAGE, 'read the CA file', caFile, err, 'caFile must name a PEM file of certificate authorities');
  }
}

class NodeFetchClient implements HttpClient {
  readonly name = 'node-fetch';
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly insecureAgent: https.Agent;

  constructor(options: HttpClientOptions) {
    const common = { keepAlive: true, maxSockets: options.maxSockets ?? 16, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(common);
    this.httpsAgent = new https.Agent({ ...common, ca: loadCA(options.caFile) });
    this.insecureAgent = new https.Agent({ ...common, rejectUnauthorized: false });
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    const agent = req.url.protocol === 'http:' ? this.httpAgent : req.insecureTLS ? this.insecureAgent : this.httpsAgent;
    const init: NodeFetchInit = {
      method: req.method,
      headers: req.headers,
      redirect: 'manual',
      compress: false,
      agent,
      // node-fetch's AbortSignal type predates Node's own; they are the same object at run time.
      signal: req.signal as NodeFetchInit['signal'],
    };
    if (req.body !== undefined) init.body = req.body;
    const res = await (await fetchModule()).default(req.url.href, init);
    const body = res.body ? (res.body as unknown as Readable) : Readable.from([]);
    return { status: res.status, headers: res.headers, body };
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.insecureAgent.destroy();
  }
}

/**
 * Node's built-in fetch. Without the `undici` package its dispatcher cannot take a CA or skip
 * verification, so it only serves hosts Node already trusts (or NODE_EXTRA_CA_CERTS).
 */
class UndiciClient implements HttpClient {
  readonly name = 'undici';

  constructor(options: HttpClientOptions) {
    if (options.caFile) {
      throw new LadingError(ERROR_CODES.USAGE, 'the undici HTTP client cannot use caFile', {
        hint: 'use the default node-fetch client, or NODE_EXTRA_CA_CERTS=FILE with undici',
      });
    }
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    if (req.insecureTLS && req.url.protocol === 'https:') {
      throw new LadingError(ERROR_CODES.USAGE, `the undici HTTP client cannot skip TLS verification for ${req.url.host}`);
    }
    const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers: req.headers, redirect: 'manual', signal: req.signal };
    if (req.body !== undefined) {
      if (Buffer.isBuffer(req.body)) init.body = req.body;
      else {
        init.body = Readable.toWeb(req.body) as unknown as ReadableStream;
        init.duplex = 'half';
      }
    }
    const res = await fetch(req.url, init);
    const body = res.body ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) : Readable.from([]);
    return { status: res.status, headers: res.headers, body };
  }

  close(): void {}
}

/**
 * Default for how long a registry may stay silent: waiting for response headers (or for it to
 * take more of a request body), or sending less than MIN_BYTES_PER_WINDOW of a response body.
 */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** A response body trickling less than this per timeout window counts as stalled (slowloris). */
export const MIN_BYTES_PER_WINDOW = 1024;

/** `LADING_REGISTRY_TIMEOUT` (seconds) when set to a positive number, else the default. */
export function timeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.LADING_REGISTRY_TIMEOUT;
  if (raw === undefined || raw === '') return DEFAULT_TIMEOUT_MS;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new LadingError(ERROR_CODES.USAGE, `LADING_REGISTRY_TIMEOUT must be a positive number of seconds, not "${raw}"`);
  }
  return Math.round(seconds * 1000);
}

/** Thrown when no response headers came in time: a network error the transport retries. */
class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
}

/**
 * An HttpClient that gives up on a silent peer: no response headers within `timeoutMs` of the
 * last request-body progress, or a response body sending less than MIN_BYTES_PER_WINDOW bytes in
 * any `timeoutMs` window. Without this a registry that accepts a connection and then stalls (or
 * trickles a byte now and then) holds a build forever.
 */
export function withTimeouts(inner: HttpClient, timeoutMs: number): HttpClient {
  return {
    name: inner.name,
    close: () => inner.close(),
    send: async (req) => {
      const controller = new AbortController();
      const signal = req.signal ? AbortSignal.any([req.signal, controller.signal]) : controller.signal;
      const seconds = `${timeoutMs / 1000} s`;
      let timer: NodeJS.Timeout | undefined;
      let answered = false;
      const arm = (): void => {
        clearTimeout(timer);
        if (answered) return;
        timer = setTimeout(() => controller.abort(new TimeoutError(`no answer from ${req.url.host} within ${seconds} (${req.method} ${req.url.pathname})`)), timeoutMs);
      };
      let body = req.body;
      if (body !== undefined && !Buffer.isBuffer(body)) {
        // The registry reading our upload is progress: the clock restarts with every chunk it takes.
        const source = body;
        const counted = new PassThrough({ highWaterMark: 64 * 1024 });
        source.on('error', (err) => counted.destroy(err));
        counted.on('data', arm);
        body = source.pipe(counted);
      }
      arm();
      let res: HttpResponse;
      try {
        res = await inner.send({ ...req, body, signal });
      } catch (err) {
        if (controller.signal.aborted && !req.signal?.aborted) throw controller.signal.reason;
        throw err;
      } finally {
        answered = true;
        clearTimeout(timer);
      }
      return { status: res.status, headers: res.headers, body: watchBody(res.body, req, timeoutMs, controller) };
    },
  };
}

function watchBody(body: Readable, req: HttpRequest, timeoutMs: number, controller: AbortController): Readable {
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  let window = 0;
  const timer = setInterval(() => {
    if (window < MIN_BYTES_PER_WINDOW) {
      clearInterval(timer);
      out.destroy(
        new LadingError(ERROR_CODES.REGISTRY, `${req.url.host} stalled: ${window} bytes of ${req.method} ${req.url.pathname} in ${timeoutMs / 1000} s`, {
          hint: 'the registry or a proxy stopped sending; try again, or raise LADING_REGISTRY_TIMEOUT (seconds) for a slow link',
        }),
      );
      body.destroy();
      controller.abort();
    }
    window = 0;
  }, timeoutMs);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  body.on('data', (c: Buffer) => (window += c.length));
  body.on('error', (err) => {
    stop();
    out.destroy(err);
  });
  out.on('close', () => {
    stop();
    if (!body.destroyed) body.destroy();
  });
  body.on('end', stop);
  body.pipe(out);
  return out;
}
