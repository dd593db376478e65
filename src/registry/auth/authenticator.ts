/**
 * Authorization for one registry: the challenge it sent, the credential the keychain gave, and the
 * bearer tokens obtained for sets of scopes, cached until their `expires_in`. The token endpoint is
 * asked the OAuth2 way (POST, refresh_token grant) when we hold an identity token, falling back to
 * the GET every token server supports; `token` or `access_token` may carry the answer.
 */
import { TTLCache } from '@isaacs/ttlcache';
import { ERROR_CODES, LadingError } from '../../errors.ts';
import { safeEmit, type EventSink } from '../events.ts';
import { readBody, type HttpRequest, type HttpResponse } from '../http.ts';
import { parseErrorBody, describeEntries, redact } from '../registry-error.ts';
import type { Challenge } from './challenge.ts';
import { secretsOf, type Credential } from './credential.ts';
import type { Keychain } from './keychain.ts';

export interface AuthenticatorOptions {
  registry: string;
  keychain: Keychain;
  /** Sends a request with retries but without registry auth (token endpoints). */
  send: (req: HttpRequest, action: string) => Promise<HttpResponse>;
  /** Whether plain http may carry credentials to this URL (loopback and insecure hosts only). */
  allowHttp: (url: URL) => boolean;
  userAgent: string;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

/** Spec default when a token answer has no expires_in. */
const DEFAULT_TOKEN_SECONDS = 60;

export class Authenticator {
  readonly registry: string;
  private challenge?: Challenge;
  private credential?: Promise<Credential | undefined>;
  /** The resolved credential, once known (for redaction, which cannot wait). */
  private credentialNow?: Credential;
  private readonly tokens = new TTLCache<string, { token: string; lifeMs: number }>({ max: 256 });
  private readonly issued = new Set<string>();
  private readonly pending = new Map<string, Promise<string>>();
  private readonly options: AuthenticatorOptions;

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    this.registry = options.registry;
  }

  setChallenge(challenge: Challenge | undefined): void {
    if (challenge) this.challenge = challenge;
  }

  /** Every secret this authenticator knows, for redacting messages. */
  secrets(): string[] {
    return [...secretsOf(this.credentialNow), ...this.issued];
  }

  async getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.options.keychain.get(this.registry, this.options.signal).then((c) => {
      this.credentialNow = c;
      return c;
    });
    return this.credential;
  }

  /** Where the credential came from, for messages ("no credential" when anonymous). */
  async describeSource(): Promise<string> {
    const cred = await this.getCredential().catch(() => undefined);
    return cred ? cred.source : 'no credential (anonymous)';
  }

  /**
   * The Authorization header for a request needing `scopes`, or undefined to go anonymous. A
   * cached token with less than `minValidityMs` left is replaced first (long uploads).
   */
  async header(scopes: string[], minValidityMs = 0): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const cred = await this.getCredential();
      if (cred?.username !== undefined && cred.password !== undefined) {
        return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
      }
      return undefined;
    }
    if (ch.scheme !== 'bearer') return undefined;
    const key = this.tokenKey(scopes);
    const cached = this.tokens.get(key);
    // Renew ahead of a long upload, but never ask for more than half a token's life.
    if (cached && this.tokens.getRemainingTTL(key) > Math.min(minValidityMs, cached.lifeMs / 2)) return `Bearer ${cached.token}`;
    // Blobs push in parallel: they share one token request instead of each asking.
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.fetchToken(scopes).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return `Bearer ${await pending}`;
  }

  /** Forget the token for these scopes (the registry refused it). */
  invalidate(scopes: string[]): void {
    this.tokens.delete(this.tokenKey(scopes));
  }

  private tokenKey(scopes: string[]): string {
    return `${this.challenge?.params.realm ?? ''}|${this.challenge?.params.service ?? ''}|${[...new Set(scopes)].sort().join(' ')}`;
  }

  /** The scopes to ask for: ours, plus any the registry named in its challenge. */
  private scopesFor(scopes: string[]): string[] {
    const extra = this.challenge?.params.scope?.split(' ').filter(Boolean) ?? [];
    return [...new Set([...scopes, ...extra])];
  }

  private async fetchToken(requested: string[]): Promise<string> {
    const ch = this.challenge!;
    const cred = await this.getCredential();
    const scopes = this.scopesFor(requested);
    if (cred?.registryToken) return this.remember(requested, cred.registryToken, 3600, cred, scopes);
    const realm = ch.params.realm;
    if (!realm) throw await this.authError('the registry asked for a bearer token but named no realm to get it from', scopes);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw await this.authError(`the registry's token realm "${realm}" is not a URL`, scopes);
    }
    if (url.protocol === 'http:' && !this.options.allowHttp(url)) {
      throw await this.authError(`the token realm ${url.origin} is plain http; refusing to send credentials there`, scopes, 'add the host to insecureRegistries only if you trust the network');
    }
    let res: HttpResponse | undefined;
    if (cred?.identityToken) {
      res = await this.postOAuth(url, ch, cred, scopes);
      // Not every token server speaks OAuth2: fall back to GET as the spec says.
      if ([400, 404, 405].includes(res.status)) {
        res.body.resume();
        res = undefined;
      }
    }
    res ??= await this.getToken(url, ch, cred, scopes);
    const text = (await readBody(res)).toString('utf8');
    if (res.status !== 200) {
      const said = describeEntries(parseErrorBody(text));
      throw await this.authError(`the token server ${url.origin} refused (HTTP ${res.status})${said ? `: ${said}` : ''}`, scopes, undefined, res.status);
    }
    let doc: { token?: string; access_token?: string; expires_in?: number };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw await this.authError(`the token server ${url.origin} answered with something other than JSON`, scopes);
    }
    const token = doc.token || doc.access_token;
    if (!token) throw await this.authError(`the token server ${url.origin} answered without a token`, scopes);
    return this.remember(requested, token, doc.expires_in ?? DEFAULT_TOKEN_SECONDS, cred, scopes);
  }

  private remember(requested: string[], token: string, seconds: number, cred: Credential | undefined, scopes: string[]): string {
    this.issued.add(token);
    // Renew a little before the registry would refuse it: 10% of its life, at most 10 s.
    const lifeMs = Math.max(1, seconds) * 1000;
    const ttl = Math.max(500, lifeMs - Math.min(10_000, lifeMs / 10));
    this.tokens.set(this.tokenKey(requested), { token, lifeMs: ttl }, { ttl });
    safeEmit(this.options.onEvent, { type: 'auth', registry: this.registry, scopes, source: cred?.source ?? 'anonymous', scheme: 'bearer' });
    return token;
  }

  private async postOAuth(url: URL, ch: Challenge, cred: Credential, scopes: string[]): Promise<HttpResponse> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken!, client_id: 'lading' });
    if (ch.params.service) form.set('service', ch.params.service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    return this.options.send(
      {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.options.userAgent },
        body: Buffer.from(form.toString()),
        signal: this.options.signal,
      },
      `get a token from ${url.origin}`,
    );
  }

  private async getToken(url: URL, ch: Challenge, cred: Credential | undefined, scopes: string[]): Promise<HttpResponse> {
    const u = new URL(url.href);
    if (ch.params.service) u.searchParams.set('service', ch.params.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent };
    const secret = cred?.password ?? cred?.identityToken;
    if (cred && secret) headers.authorization = `Basic ${Buffer.from(`${cred.username ?? ''}:${secret}`).toString('base64')}`;
    return this.options.send({ method: 'GET', url: u, headers, signal: this.options.signal }, `get a token from ${u.origin}`);
  }

  /** An auth failure naming host, scope and credential source, never the secret. */
  async authError(what: string, scopes: string[], hint?: string, status?: number): Promise<LadingError> {
    const source = await this.describeSource();
    const message = `authentication to ${this.registry} failed: ${what} (scope ${scopes.join(' ') || 'none'}; credential from ${source})`;
    return new LadingError(ERROR_CODES.REGISTRY_AUTH, redact(message, this.secrets()), {
      hint: hint ?? 'check the credential (docker login, LADING_REGISTRY_AUTH, a CI token) and that it may access this repository',
      details: { host: this.registry, scopes, credentialSource: source, status },
    });
  }
}
