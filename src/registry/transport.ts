/**
 * Requests to registries: picks the scheme (TLS everywhere, plain http only for loopback hosts and
 * those named insecure), attaches authorization for the scopes a request needs, answers a 401 by
 * re-authenticating once and re-sending, retries 5xx, 429 (honouring Retry-After) and dropped
 * connections with backoff and jitter, follows redirects without carrying credentials to another
 * host, and turns every other failure into a LadingError with the registry's own error code.
 *
 * Bodies are factories: each attempt gets a fresh stream, so a retry or a re-authentication can
 * re-send what the first attempt consumed.
 */
import type { Readable } from 'node:stream';
import { ERROR_CODES, LadingError, throwIfAborted } from '../errors.ts';
import { Authenticator } from './auth/authenticator.ts';
import { parseChallenges, pickChallenge } from './auth/challenge.ts';
import type { Keychain } from './auth/keychain.ts';
import { safeEmit, type EventSink } from './events.ts';
import { discard, readBody, type HttpClient, type HttpRequest, type HttpResponse } from './http.ts';
import { canonicalRegistry, registryApiHost } from './reference.ts';
import { parseErrorBody, registryError } from './registry-error.ts';

export type BodyFactory = () => Buffer | Readable | Promise<Buffer | Readable>;

export interface RegistryRequest {
  registry: string;
  method: string;
  /** Path from the registry root (`/v2/...`), or an absolute URL (an upload Location). */
  path: string | URL;
  headers?: Record<string, string>;
  body?: BodyFactory;
  /** Scopes the request needs, e.g. `repository:acme/app:pull,push`. */
  scopes: string[];
  /** Statuses handed back to the caller (default: 2xx). Anything else becomes an error. */
  accept?: (status: number) => boolean;
  /** What we are doing, for messages: "push blob sha256:… to acme/app". */
  action: string;
  /** Retry transient failures here (default true). False when the caller resumes on its own. */
  retry?: boolean;
  /** Renew a bearer token with less than this left before sending (long uploads). */
  minTokenValidityMs?: number;
}

export interface TransportOptions {
  http: HttpClient;
  keychain: Keychain;
  insecureRegistries?: string[];
  maxRetries?: number;
  userAgent?: string;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** First backoff delay; doubles each retry, with jitter (default 250 ms). */
  retryBaseMs?: number;
  /** Longest wait between tries, Retry-After included (default 30 s). */
  retryMaxMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A network error worth trying again (the connection dropped, was refused, or timed out). */
function isTransientNetworkError(err: unknown): boolean {
  const e = err as { code?: string; type?: string; name?: string; cause?: { code?: string } };
  if (e?.name === 'AbortError') return false;
  const code = e?.code ?? e?.cause?.code;
  if (code && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'].includes(code)) return true;
  const text = String((err as Error)?.message ?? '');
  return /socket hang up|premature close|ECONNRESET|other side closed|terminated|fetch failed/i.test(text);
}

function isTlsMismatch(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const text = `${e?.code ?? ''} ${e?.message ?? ''} ${e?.cause?.code ?? ''} ${e?.cause?.message ?? ''}`;
  return /EPROTO|wrong version number|ERR_SSL|packet length too long|ECONNRESET|socket hang up/i.test(text);
}

function isCertificateError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO|ERR_TLS_CERT/.test(code) || /certificate/i.test(e?.message ?? '');
}

export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/** Retry-After as milliseconds (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface Endpoint {
  origin: string;
  insecureTLS: boolean;
}

export class Transport {
  private readonly options: Required<Pick<TransportOptions, 'maxRetries' | 'userAgent' | 'retryBaseMs' | 'retryMaxMs'>> & TransportOptions;
  private readonly insecure: Set<string>;
  private readonly endpoints = new Map<string, Promise<Endpoint>>();
  private readonly auths = new Map<string, Authenticator>();

  constructor(options: TransportOptions) {
    this.options = {
      ...options,
      maxRetries: options.maxRetries ?? 5,
      userAgent: options.userAgent ?? 'lading',
      retryBaseMs: options.retryBaseMs ?? 250,
      retryMaxMs: options.retryMaxMs ?? 30_000,
    };
    this.insecure = new Set((options.insecureRegistries ?? []).map(canonicalRegistry));
  }

  get onEvent(): EventSink | undefined {
    return this.options.onEvent;
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  private isInsecure(registry: string): boolean {
    return this.insecure.has(canonicalRegistry(registry));
  }

  /** Whether credentials may travel over plain http to `url`. */
  private allowHttp(url: URL): boolean {
    return isLoopbackHost(url.host) || this.isInsecure(url.host);
  }

  auth(registry: string): Authenticator {
    const key = canonicalRegistry(registry);
    let a = this.auths.get(key);
    if (!a) {
      a = new Authenticator({
        registry: key,
        keychain: this.options.keychain,
        send: (req, action) => this.sendRaw(req, key, action),
        allowHttp: (url) => this.allowHttp(url),
        userAgent: this.options.userAgent,
        onEvent: this.options.onEvent,
        signal: this.options.signal,
      });
      this.auths.set(key, a);
    }
    return a;
  }

  /** The registry's base URL, found once by pinging `/v2/` (which also yields its auth challenge). */
  endpoint(registry: string): Promise<Endpoint> {
    const key = canonicalRegistry(registry);
    let e = this.endpoints.get(key);
    if (!e) {
      e = this.discover(key);
      e.catch(() => this.endpoints.delete(key));
      this.endpoints.set(key, e);
    }
    return e;
  }

  private async discover(registry: string): Promise<Endpoint> {
    const host = registryApiHost(registry);
    const insecure = this.isInsecure(registry);
    const candidates: Endpoint[] = [{ origin: `https://${host}`, insecureTLS: insecure }];
    if (insecure || isLoopbackHost(host)) candidates.push({ origin: `http://${host}`, insecureTLS: false });
    let lastError: unknown;
    for (const [i, candidate] of candidates.entries()) {
      const last = i === candidates.length - 1;
      try {
        const res = await this.sendRaw(
          { method: 'GET', url: new URL('/v2/', candidate.origin), headers: { 'user-agent': this.options.userAgent }, signal: this.options.signal, insecureTLS: candidate.insecureTLS },
          registry,
          `reach ${registry}`,
          last ? this.options.maxRetries : 0,
        );
        if (res.status === 401) this.auth(registry).setChallenge(pickChallenge(parseChallenges(res.headers.get('www-authenticate'))));
        discard(res);
        return candidate;
      } catch (err) {
        lastError = err;
        if (last) throw err;
        if (isCertificateError(err)) {
          throw registryError({
            action: `verify the TLS certificate of ${registry}`,
            host: registry,
            entries: [{ code: 'TLS', message: (err as Error).message }],
            hint: 'pass caFile (or NODE_EXTRA_CA_CERTS) with the CA that signed it, or name the host in insecureRegistries',
            cause: err,
          });
        }
        if (!isTlsMismatch(err) && !(err instanceof LadingError)) throw err;
      }
    }
    throw lastError;
  }

  /** Send with retries on transient failures, without registry authorization. */
  private async sendRaw(req: HttpRequest, registry: string, action: string, maxRetries = this.options.maxRetries): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(this.options.signal);
      let res: HttpResponse;
      try {
        res = await this.options.http.send(req);
      } catch (err) {
        if (attempt < maxRetries && isTransientNetworkError(err) && (req.body === undefined || Buffer.isBuffer(req.body))) {
          await this.backoff(registry, req.method, req.url, attempt, (err as Error).message);
          continue;
        }
        throw this.networkError(err, action, registry);
      }
      if (retryableStatus(res.status) && attempt < maxRetries && (req.body === undefined || Buffer.isBuffer(req.body))) {
        discard(res);
        await this.backoff(registry, req.method, req.url, attempt, `HTTP ${res.status}`, parseRetryAfter(res.headers.get('retry-after')));
        continue;
      }
      return res;
    }
  }

  private networkError(err: unknown, action: string, registry: string): LadingError {
    if (err instanceof LadingError) return err;
    if ((err as Error)?.name === 'AbortError' || this.options.signal?.aborted) {
      return new LadingError(ERROR_CODES.INTERRUPTED, `cancelled while trying to ${action}`, { cause: err });
    }
    const e = err as { code?: string; message?: string; cause?: { code?: string } };
    return registryError(
      {
        action,
        host: registry,
        entries: [{ code: e.code ?? e.cause?.code ?? 'NETWORK', message: e.message ?? String(err) }],
        hint: 'check that the registry is reachable (network, proxy, DNS, firewall)',
        cause: err,
      },
      this.auth(registry).secrets(),
    );
  }

  private async backoff(registry: string, method: string, url: URL, attempt: number, reason: string, retryAfterMs?: number): Promise<void> {
    const exp = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** attempt);
    const jittered = exp / 2 + Math.random() * (exp / 2);
    const delayMs = Math.round(retryAfterMs !== undefined ? Math.min(this.options.retryMaxMs, Math.max(retryAfterMs, jittered / 4)) : jittered);
    safeEmit(this.options.onEvent, { type: 'retry', registry, method, path: url.pathname, attempt: attempt + 1, delayMs, reason });
    await sleep(delayMs, this.options.signal);
  }

  /** Send a registry API request; the response's status is one the caller accepted. */
  async request(r: RegistryRequest): Promise<HttpResponse> {
    const registry = canonicalRegistry(r.registry);
    const endpoint = await this.endpoint(registry);
    const auth = this.auth(registry);
    const accept = r.accept ?? ((s: number) => s >= 200 && s < 300);
    const retry = r.retry !== false;
    const firstUrl = typeof r.path === 'string' ? new URL(r.path, endpoint.origin) : r.path;
    let reauthenticated = false;
    for (let attempt = 0; ; ) {
      throwIfAborted(this.options.signal);
      let res: HttpResponse;
      let bodyError: unknown;
      try {
        ({ res, bodyError } = await this.sendFollowingRedirects(r, firstUrl, endpoint, auth));
      } catch (err) {
        if (err instanceof LadingError) throw err;
        if (retry && attempt < this.options.maxRetries && isTransientNetworkError(err)) {
          await this.backoff(registry, r.method, firstUrl, attempt++, (err as Error).message);
          continue;
        }
        throw this.networkError(err, r.action, registry);
      }
      if (bodyError instanceof LadingError) {
        discard(res);
        throw bodyError;
      }
      if (res.status === 401 && !reauthenticated) {
        // Tokens expire and registries revoke them: learn the challenge, drop the token, try once more.
        reauthenticated = true;
        auth.setChallenge(pickChallenge(parseChallenges(res.headers.get('www-authenticate'))));
        auth.invalidate(r.scopes);
        discard(res);
        continue;
      }
      if (accept(res.status)) return res;
      if (retry && retryableStatus(res.status) && attempt < this.options.maxRetries) {
        discard(res);
        await this.backoff(registry, r.method, firstUrl, attempt++, `HTTP ${res.status}`, parseRetryAfter(res.headers.get('retry-after')));
        continue;
      }
      throw await this.failure(r, res, registry, auth);
    }
  }

  /** Read an unwanted answer into the error people see. */
  async failure(r: Pick<RegistryRequest, 'action' | 'scopes'>, res: HttpResponse, registry: string, auth = this.auth(registry)): Promise<LadingError> {
    let text = '';
    try {
      text = (await readBody(res, 64 * 1024)).toString('utf8');
    } catch {
      // The body is only for the message.
    }
    const entries = parseErrorBody(text);
    if (res.status === 401) {
      const said = entries.length ? `; the registry said ${entries.map((e) => `${e.code}: ${e.message}`).join('; ')}` : '';
      const cred = await auth.getCredential().catch(() => undefined);
      const why = cred ? `unauthorized: the registry refused the credential for ${r.action}` : `unauthorized: ${r.action} needs a credential and none was found`;
      return auth.authError(`${why}${said}`, r.scopes, cred ? undefined : `log in to ${registry} (docker login, LADING_REGISTRY_AUTH=${registry}=USER:PASSWORD, or a CI provider; see docs/auth.md)`, 401);
    }
    if (res.status === 403) {
      const source = await auth.describeSource();
      return registryError(
        { action: r.action, host: registry, status: 403, entries, extra: { scopes: r.scopes, credentialSource: source }, code: ERROR_CODES.REGISTRY_AUTH, hint: `the credential from ${source} may not do this (scope ${r.scopes.join(' ')})` },
        auth.secrets(),
      );
    }
    return registryError({ action: r.action, host: registry, status: res.status, entries }, auth.secrets());
  }

  private async sendFollowingRedirects(r: RegistryRequest, firstUrl: URL, endpoint: Endpoint, auth: Authenticator): Promise<{ res: HttpResponse; bodyError?: unknown }> {
    let url = firstUrl;
    let method = r.method;
    let withBody = r.body !== undefined;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === endpoint.origin;
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...r.headers };
      if (sameOrigin) {
        const authorization = await auth.header(r.scopes, r.minTokenValidityMs);
        if (authorization) headers.authorization = authorization;
      }
      let bodyError: unknown;
      let body: Buffer | Readable | undefined;
      if (withBody) {
        body = await r.body!();
        if (!Buffer.isBuffer(body)) body.once('error', (e) => (bodyError = e));
      } else if (method !== 'GET' && method !== 'HEAD') {
        headers['content-length'] ??= '0';
      }
      let res: HttpResponse;
      try {
        res = await this.options.http.send({ method, url, headers, body, signal: this.options.signal, insecureTLS: url.host === firstUrl.host ? endpoint.insecureTLS : false });
      } catch (err) {
        if (bodyError instanceof LadingError) throw bodyError;
        throw err;
      }
      const location = res.headers.get('location');
      if (!REDIRECTS.has(res.status) || !location || hop >= MAX_REDIRECTS) return { res, bodyError };
      discard(res);
      const next = new URL(location, url);
      if (next.protocol === 'http:' && url.protocol === 'https:' && !this.allowHttp(next)) {
        throw registryError({ action: r.action, host: auth.registry, entries: [{ code: 'REDIRECT', message: `refusing a redirect from https to plain http (${next.host})` }] });
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method !== 'GET' && method !== 'HEAD')) {
        method = 'GET';
        withBody = false;
      }
      url = next;
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new LadingError(ERROR_CODES.INTERRUPTED, 'cancelled', { cause: signal.reason }));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new LadingError(ERROR_CODES.INTERRUPTED, 'cancelled', { cause: signal?.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
