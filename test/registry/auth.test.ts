/**
 * Authentication against a real Distribution registry: bearer tokens from a token server (`auth:
 * token`, the issuer being test scaffolding), Basic auth through htpasswd on a TLS port signed by a
 * test CA. Failures must name the host, the scope and the credential's source, never the secret,
 * and must not turn into a storm of requests.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { LadingError } from '../../src/errors.ts';
import { Keychain, RegistryClient, createHttpClient, parseReference, staticProvider, type HttpClient, type RegistryEvent } from '../../src/registry/index.ts';
import { makeImage, tempStore } from './helpers/images.ts';
import { makePki, type TestPki } from './helpers/pki.ts';
import { startProxy } from './helpers/proxy.ts';
import { startTokenIssuer, type IssuerOptions } from './helpers/token-issuer.ts';

const test = testNeeding(['docker-registry', 'openssl', 'htpasswd', 'skopeo'], 'registry auth');

// skopeo runs asynchronously: it asks the in-process token issuer for tokens.
const run = promisify(execFile);

const PASSWORD = 's3cret-Pa55word-that-must-not-leak';
const IDENTITY = 'refresh-token-that-must-not-leak-0123456789';

let pki: TestPki;
test.before(async () => {
  pki = await makePki();
});
test.after.always(async () => {
  await pki?.remove();
});

async function withTokenRegistry<T>(issuerOptions: Partial<IssuerOptions>, fn: (ctx: { host: string; url: string; issuer: Awaited<ReturnType<typeof startTokenIssuer>> }) => Promise<T>): Promise<T> {
  const issuer = await startTokenIssuer({
    certFile: pki.tokenCert,
    keyFile: pki.tokenKey,
    service: 'lading-test',
    issuer: 'lading-test-issuer',
    users: { alice: PASSWORD },
    refreshTokens: { [IDENTITY]: 'alice' },
    ...issuerOptions,
  });
  const reg = await startRegistry({ auth: issuer.authConfig() });
  try {
    return await fn({ host: reg.host, url: reg.url, issuer });
  } finally {
    await reg.stop();
    await issuer.stop();
  }
}

function keychainFor(host: string, cred: Parameters<typeof staticProvider>[0][string], source?: string): Keychain {
  return new Keychain([staticProvider({ [host]: cred }, source)]);
}

/** Everything a secret could hide in: message, stack, hint, details, cause chain, events. */
function exposed(err: unknown, events: RegistryEvent[] = []): string {
  const e = err as LadingError;
  const parts = [String(e?.message), String(e?.stack), String(e?.hint), JSON.stringify(e?.details ?? {}), JSON.stringify(events)];
  let cause = (e as { cause?: unknown })?.cause;
  while (cause) {
    parts.push(String((cause as Error).message), String((cause as Error).stack));
    cause = (cause as { cause?: unknown }).cause;
  }
  return parts.join('\n');
}

function countingHttp(inner: HttpClient): HttpClient & { count: number; byPath: string[] } {
  const wrapper = {
    name: `counting ${inner.name}`,
    count: 0,
    byPath: [] as string[],
    send: (req: Parameters<HttpClient['send']>[0]) => {
      wrapper.count++;
      wrapper.byPath.push(`${req.method} ${req.url.pathname}`);
      return inner.send(req);
    },
    close: () => inner.close(),
  };
  return wrapper;
}

test('bearer tokens: push and pull with a password, one token per scope set, cached', async (t) => {
  await withTokenRegistry({}, async ({ host, issuer }) => {
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'token', [60_000, 30_000]);
      const events: RegistryEvent[] = [];
      const client = new RegistryClient({ keychain: keychainFor(host, { username: 'alice', password: PASSWORD }), onEvent: (e) => events.push(e) });
      await client.pushImage(img, [parseReference(`${host}/tok/app:1`)]);
      const pushTokens = issuer.log.filter((l) => l.status === 200);
      t.is(pushTokens.length, 1, 'one token served the whole push');
      t.deepEqual(pushTokens[0]!.scopes, ['repository:tok/app:pull,push']);
      t.is(pushTokens[0]!.method, 'GET');
      const resolved = await client.resolve(`${host}/tok/app:1`);
      t.is(resolved.descriptor.digest, img.digest);
      t.true(events.some((e) => e.type === 'auth' && e.source.includes('explicit')));
      t.false(JSON.stringify(events).includes(PASSWORD));
      client.close();
    } finally {
      await remove();
    }
  });
});

test('bearer tokens: the OAuth2 POST flow with an identity token, `access_token` answers, and the GET fallback', async (t) => {
  await withTokenRegistry({ field: 'access_token' }, async ({ host, issuer }) => {
    const client = new RegistryClient({ keychain: keychainFor(host, { identityToken: IDENTITY }) });
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'oauth', [10_000]);
      await client.pushImage(img, [parseReference(`${host}/oauth/app:1`)]);
      const post = issuer.log.find((l) => l.method === 'POST');
      t.truthy(post);
      t.is(post!.user, 'alice');
      t.is(issuer.log.filter((l) => l.method === 'GET').length, 0);
    } finally {
      client.close();
      await remove();
    }
  });
  await withTokenRegistry({ oauth: false }, async ({ host, issuer }) => {
    const client = new RegistryClient({ keychain: keychainFor(host, { identityToken: IDENTITY, username: 'alice' }) });
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'oauth-fallback', [10_000]);
      await client.pushImage(img, [parseReference(`${host}/oauth/app:1`)]);
      t.deepEqual(issuer.log.map((l) => `${l.method} ${l.status}`), ['POST 404', 'GET 200']);
    } finally {
      client.close();
      await remove();
    }
  });
});

test('a wrong password: one clear unauthorized error naming host, scope and source, no retry storm, no secret', async (t) => {
  await withTokenRegistry({}, async ({ host, issuer }) => {
    const http = countingHttp(createHttpClient());
    const events: RegistryEvent[] = [];
    const wrong = `${PASSWORD}-wrong`;
    const client = new RegistryClient({ http, keychain: keychainFor(host, { username: 'alice', password: wrong }, 'test keychain'), onEvent: (e) => events.push(e), retryBaseMs: 1 });
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'wrong', [10_000]);
      const err = await t.throwsAsync(client.pushImage(img, [parseReference(`${host}/deny/app:1`)]));
      t.true(err instanceof LadingError);
      t.is((err as LadingError).code, 'REGISTRY_AUTH');
      t.regex(err!.message, new RegExp(`${host.replace(/[.]/g, '\\.')}`));
      t.regex(err!.message, /repository:deny\/app:pull,push/);
      t.regex(err!.message, /test keychain/);
      t.regex(err!.message, /invalid username or password/);
      t.false(exposed(err, events).includes(wrong));
      t.false(exposed(err, events).includes(Buffer.from(`alice:${wrong}`).toString('base64')));
      t.true(issuer.log.length <= 2, `token requests: ${issuer.log.length}`);
      t.true(http.count <= 6, `requests: ${http.byPath.join(', ')}`);
    } finally {
      client.close();
      await remove();
    }
  });
});

test('anonymous access to a protected repository says no credential was found', async (t) => {
  await withTokenRegistry({}, async ({ host }) => {
    const client = new RegistryClient({ keychain: new Keychain([]) });
    const err = await t.throwsAsync(client.resolve(`${host}/private/app:1`));
    t.is((err as LadingError).code, 'REGISTRY_AUTH');
    t.regex(err!.message, /needs a credential and none was found/);
    t.regex(err!.message, /repository:private\/app:pull/);
    t.regex(err!.message, /UNAUTHORIZED/);
    t.regex((err as LadingError).hint ?? '', /docker login/);
    client.close();
  });
});

test('a 401 in the middle of a push re-authenticates and re-sends the body from the store', async (t) => {
  await withTokenRegistry({}, async ({ host, url, issuer }) => {
    const proxy = await startProxy(url);
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'midpush', [700_000]);
      let injected = 0;
      proxy.fault = (r) => {
        if (r.method === 'PATCH' && injected === 0) {
          injected++;
          return { status: 401, headers: { 'www-authenticate': `Bearer realm="${issuer.realm}",service="lading-test",scope="repository:mid/app:pull,push"` }, body: '{"errors":[{"code":"UNAUTHORIZED","message":"token revoked"}]}' };
        }
        return undefined;
      };
      const client = new RegistryClient({ keychain: keychainFor(proxy.host, { username: 'alice', password: PASSWORD }), chunkSize: 256 * 1024 });
      const result = await client.pushImage(img, [parseReference(`${proxy.host}/mid/app:1`)]);
      t.is(result.digest, img.digest);
      t.is(injected, 1);
      t.is(issuer.log.filter((l) => l.status === 200).length, 2, 'a new token after the 401');
      const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', `alice:${PASSWORD}`, '--format', '{{.Digest}}', `docker://${host}/mid/app:1`], { encoding: 'utf8' });
      t.is(stdout.trim(), img.digest);
      client.close();
    } finally {
      await proxy.stop();
      await remove();
    }
  });
});

test('tokens are renewed when they expire', async (t) => {
  await withTokenRegistry({ expiresIn: 1 }, async ({ host, issuer }) => {
    const client = new RegistryClient({ keychain: keychainFor(host, { username: 'alice', password: PASSWORD }) });
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'expiry', [5_000]);
      await client.pushImage(img, [parseReference(`${host}/exp/app:1`)]);
      const after1 = issuer.log.length;
      await new Promise((r) => setTimeout(r, 1200));
      await client.resolve(`${host}/exp/app:1`);
      t.true(issuer.log.length > after1);
    } finally {
      client.close();
      await remove();
    }
  });
});

async function withBasicTlsRegistry<T>(fn: (host: string) => Promise<T>): Promise<T> {
  const htpasswd = path.join(pki.dir, 'htpasswd');
  await fs.writeFile(htpasswd, execFileSync('htpasswd', ['-Bbn', 'bob', PASSWORD]));
  const reg = await startRegistry({ tls: { certificate: pki.serverCert, key: pki.serverKey }, auth: ['htpasswd:', '  realm: lading-test', `  path: ${htpasswd}`].join('\n') });
  try {
    return await fn(reg.host);
  } finally {
    await reg.stop();
  }
}

test('Basic auth (htpasswd, bcrypt) over TLS with a test CA', async (t) => {
  await withBasicTlsRegistry(async (host) => {
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'basic', [20_000]);
      const client = new RegistryClient({ caFile: pki.caCert, keychain: keychainFor(host, { username: 'bob', password: PASSWORD }) });
      const res = await client.pushImage(img, [parseReference(`${host}/basic/app:1`)]);
      t.is(res.digest, img.digest);
      const pulled = await client.resolve(`${host}/basic/app:1`);
      t.is(pulled.descriptor.digest, img.digest);
      const { stdout } = await run('skopeo', ['inspect', '--cert-dir', pki.caDir, '--creds', `bob:${PASSWORD}`, '--format', '{{.Digest}}', `docker://${host}/basic/app:1`], { encoding: 'utf8' });
      t.is(stdout.trim(), img.digest);
      client.close();

      const untrusting = new RegistryClient({ keychain: keychainFor(host, { username: 'bob', password: PASSWORD }) });
      const tlsErr = await t.throwsAsync(untrusting.resolve(`${host}/basic/app:1`));
      t.regex(tlsErr!.message, /certificate/i);
      t.regex((tlsErr as LadingError).hint ?? '', /caFile/);
      untrusting.close();
    } finally {
      await remove();
    }
  });
});

test('a host named in insecureRegistries may present a certificate we cannot verify; others may not', async (t) => {
  await withBasicTlsRegistry(async (host) => {
    const keychain = keychainFor(host, { username: 'bob', password: PASSWORD });
    const insecure = new RegistryClient({ keychain, insecureRegistries: [host] });
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'insecure', [5_000]);
      t.is((await insecure.pushImage(img, [parseReference(`${host}/insecure/app:1`)])).digest, img.digest);
      const strict = new RegistryClient({ keychain, insecureRegistries: ['other.example.com'] });
      const err = await t.throwsAsync(strict.resolve(`${host}/insecure/app:1`));
      t.regex(err!.message, /certificate/i);
      strict.close();
    } finally {
      insecure.close();
      await remove();
    }
  });
});

test('Basic auth with a wrong password: unauthorized, naming the registry, in a handful of requests', async (t) => {
  await withBasicTlsRegistry(async (host) => {
    const http = countingHttp(createHttpClient('node-fetch', { caFile: pki.caCert }));
    const events: RegistryEvent[] = [];
    const client = new RegistryClient({ http, keychain: keychainFor(host, { username: 'bob', password: 'not-the-password-xyz' }, 'docker config /tmp/x/config.json'), onEvent: (e) => events.push(e), retryBaseMs: 1 });
    const err = await t.throwsAsync(client.resolve(`${host}/basic/app:1`));
    t.is((err as LadingError).code, 'REGISTRY_AUTH');
    t.regex(err!.message, /unauthorized/);
    t.true(err!.message.includes(host));
    t.regex(err!.message, /docker config \/tmp\/x\/config\.json/);
    t.false(exposed(err, events).includes('not-the-password-xyz'));
    t.true(http.count <= 3, `requests: ${http.byPath.join(', ')}`);
    http.close();
  });
});
