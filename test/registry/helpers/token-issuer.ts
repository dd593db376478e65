/**
 * A small token server for Distribution's `auth: token` (test scaffolding; the registry is real).
 * It checks Basic credentials or a refresh token, grants what is asked, and signs an RS256 JWT
 * carrying its certificate in `x5c`, which the registry verifies against `rootcertbundle`.
 * Behaviours registries differ in are switches: `token` vs `access_token`, OAuth2 POST or not,
 * token lifetime.
 */
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IssuerOptions {
  certFile: string;
  keyFile: string;
  service: string;
  issuer: string;
  users: Record<string, string>;
  /** Refresh tokens (identity tokens) and the user each stands for. */
  refreshTokens?: Record<string, string>;
  /** Which field carries the token (default both `token` and `access_token`). */
  field?: 'token' | 'access_token' | 'both';
  /** Answer POST (OAuth2) requests; when false a POST gets 404. */
  oauth?: boolean;
  /** Seconds the token lives (default 300). */
  expiresIn?: number;
  /** Grant pull to anonymous requests. */
  anonymousPull?: boolean;
}

export interface IssuedLog {
  method: string;
  user?: string;
  scopes: string[];
  status: number;
  authorization?: string;
}

export interface TokenIssuer {
  url: string;
  realm: string;
  log: IssuedLog[];
  options: IssuerOptions;
  /** Registry `auth:` YAML for this issuer. */
  authConfig(): string;
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startTokenIssuer(options: IssuerOptions): Promise<TokenIssuer> {
  const key = createPrivateKey(readFileSync(options.keyFile));
  const certDer = readFileSync(options.certFile, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const log: IssuedLog[] = [];

  function jwt(user: string | undefined, scopes: string[]): string {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes
      .map((s) => s.split(':'))
      .filter((p) => p.length >= 3 && p[0] === 'repository')
      .map((p) => {
        const actions = p[p.length - 1]!.split(',');
        return { type: 'repository', name: p.slice(1, -1).join(':'), actions: user ? actions : actions.filter((a) => a === 'pull' && options.anonymousPull) };
      });
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer] };
    const claims = { iss: options.issuer, sub: user ?? '', aud: options.service, exp: now + (options.expiresIn ?? 300), nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const data = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${data}.${b64url(sign('sha256', Buffer.from(data), key))}`;
  }

  function answer(res: http.ServerResponse, token: string): void {
    const field = options.field ?? 'both';
    const body: Record<string, unknown> = { expires_in: options.expiresIn ?? 300, issued_at: new Date().toISOString() };
    if (field !== 'access_token') body.token = token;
    if (field !== 'token') body.access_token = token;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  function deny(res: http.ServerResponse, entry: IssuedLog): void {
    entry.status = 401;
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password (test issuer)' }] }));
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const entry: IssuedLog = { method: req.method ?? 'GET', scopes: [], status: 200, authorization: req.headers.authorization };
      log.push(entry);
      if (req.method === 'POST') {
        if (options.oauth === false) {
          entry.status = 404;
          res.writeHead(404).end('not found');
          return;
        }
        const form = new URLSearchParams(body);
        entry.scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        let user: string | undefined;
        if (form.get('grant_type') === 'refresh_token') user = options.refreshTokens?.[form.get('refresh_token') ?? ''];
        else if (form.get('grant_type') === 'password' && options.users[form.get('username') ?? ''] === form.get('password')) user = form.get('username')!;
        if (!user) return deny(res, entry);
        entry.user = user;
        return answer(res, jwt(user, entry.scopes));
      }
      entry.scopes = url.searchParams.getAll('scope');
      const auth = req.headers.authorization;
      let user: string | undefined;
      if (auth?.startsWith('Basic ')) {
        const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        const p = rest.join(':');
        if (options.users[u!] === p) user = u;
        else if (options.refreshTokens?.[p]) user = options.refreshTokens[p];
        else return deny(res, entry);
      }
      entry.user = user;
      answer(res, jwt(user, entry.scopes));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    realm: `${url}/token`,
    log,
    options,
    authConfig: () => ['token:', `  realm: ${url}/token`, `  service: ${options.service}`, `  issuer: ${options.issuer}`, `  rootcertbundle: ${options.certFile}`].join('\n'),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
