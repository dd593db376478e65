/**
 * Every credential source: docker config.json in each key spelling, podman's auth.json,
 * credential helpers (a fake docker-credential-* on PATH speaking the helper protocol),
 * LADING_REGISTRY_AUTH, and the CI providers, each against a local stand-in endpoint and a real
 * htpasswd registry.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import anyTest from 'ava';
import { startRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { ecrProvider, gceMetadataProvider, githubActionsProvider, parseEcrHost, type EcrSdk } from '../../src/registry/auth/ci-providers.ts';
import { Keychain, defaultKeychain, dockerConfigProvider, envProvider, staticProvider } from '../../src/registry/auth/keychain.ts';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import { makeImage, tempStore } from './helpers/images.ts';

const test = anyTest;
const registryTest = testNeeding(['docker-registry', 'htpasswd'], 'registry credential providers');

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'lading-keychain-'));
}

test('docker config.json: every key spelling finds its registry', async (t) => {
  const dir = await tempDir();
  try {
    await fs.writeFile(
      path.join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
          'registry.example.com': { auth: b64('bare:pw1') },
          'https://scheme.example.com': { auth: b64('scheme:pw2') },
          'http://plain.example.com:5000/v2/': { username: 'plain', password: 'pw3' },
          'ghcr.io': { identitytoken: 'refresh-xyz' },
          'empty.example.com': {},
        },
      }),
    );
    const provider = dockerConfigProvider({ env: { DOCKER_CONFIG: dir }, homedir: '/nonexistent' });
    const kc = new Keychain([provider]);
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      const c = await kc.get(host);
      t.is(c?.username, 'hubuser', host);
      t.is(c?.password, 'hubpass', host);
      t.true(c!.source.includes('https://index.docker.io/v1/'));
      t.false(c!.source.includes('hubpass'));
    }
    t.is((await kc.get('registry.example.com'))?.password, 'pw1');
    t.is((await kc.get('scheme.example.com'))?.password, 'pw2');
    t.is((await kc.get('plain.example.com:5000'))?.username, 'plain');
    t.is((await kc.get('ghcr.io'))?.identityToken, 'refresh-xyz');
    t.is(await kc.get('empty.example.com'), undefined);
    t.is(await kc.get('unknown.example.com'), undefined);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("podman's auth.json (REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR) after docker's config", async (t) => {
  const dir = await tempDir();
  try {
    await fs.mkdir(path.join(dir, 'run', 'containers'), { recursive: true });
    await fs.writeFile(path.join(dir, 'run', 'containers', 'auth.json'), JSON.stringify({ auths: { 'quay.io': { auth: b64('quayuser:quaypw') } } }));
    await fs.writeFile(path.join(dir, 'explicit.json'), JSON.stringify({ auths: { 'harbor.example.com': { auth: b64('robot$ci:harborpw') } } }));
    const env = { REGISTRY_AUTH_FILE: path.join(dir, 'explicit.json'), XDG_RUNTIME_DIR: path.join(dir, 'run'), DOCKER_CONFIG: path.join(dir, 'nodocker') };
    const kc = new Keychain([dockerConfigProvider({ env, homedir: dir })]);
    t.is((await kc.get('quay.io'))?.password, 'quaypw');
    const harbor = await kc.get('harbor.example.com');
    t.is(harbor?.username, 'robot$ci');
    t.is(harbor?.password, 'harborpw');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

const HELPER = `#!/bin/sh
# A docker credential helper speaking the protocol: "get", server URL on stdin, JSON on stdout.
[ "$1" = get ] || exit 2
read -r url
case "$url" in
  https://index.docker.io/v1/) echo '{"ServerURL":"'"$url"'","Username":"hub-from-helper","Secret":"helper-secret-1"}' ;;
  tok.example.com) echo '{"ServerURL":"'"$url"'","Username":"<token>","Secret":"helper-identity-token"}' ;;
  broken.example.com) echo "the keyring is locked" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

test('credential helpers: credHelpers per registry, credsStore for the rest, the helper protocol', async (t) => {
  const dir = await tempDir();
  try {
    await fs.writeFile(path.join(dir, 'docker-credential-fake'), HELPER, { mode: 0o755 });
    await fs.writeFile(
      path.join(dir, 'config.json'),
      JSON.stringify({ credsStore: 'fake', credHelpers: { 'tok.example.com': 'fake', 'missing.example.com': 'nosuchhelper' }, auths: { 'fallback.example.com': { auth: b64('fb:fbpw') } } }),
    );
    const env = { DOCKER_CONFIG: dir, PATH: `${dir}:${process.env.PATH}` };
    const kc = new Keychain([dockerConfigProvider({ env })]);
    const hub = await kc.get('docker.io');
    t.deepEqual({ u: hub?.username, p: hub?.password }, { u: 'hub-from-helper', p: 'helper-secret-1' });
    t.is(hub?.source, 'credential helper docker-credential-fake');
    const tok = await kc.get('tok.example.com');
    t.is(tok?.identityToken, 'helper-identity-token');
    t.is(tok?.username, undefined);
    // The store has nothing: the auths entry still answers.
    t.is((await kc.get('fallback.example.com'))?.password, 'fbpw');
    const broken = await t.throwsAsync(kc.get('broken.example.com'));
    t.regex(broken!.message, /docker-credential-fake failed for broken\.example\.com \(exit 3\): the keyring is locked/);
    const missing = await t.throwsAsync(kc.get('missing.example.com'));
    t.regex(missing!.message, /docker-credential-nosuchhelper .*not found on PATH/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('LADING_REGISTRY_AUTH: JSON in config.json shape, or HOST=USER:PASSWORD lines', async (t) => {
  const json = envProvider({ env: { LADING_REGISTRY_AUTH: JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('u1:p1') } }, 'ghcr.io': { username: 'u2', password: 'p2' } }) } });
  t.is((await json.get('docker.io'))?.password, 'p1');
  const lines = envProvider({ env: { LADING_REGISTRY_AUTH: 'ghcr.io=me:tok:with:colons\n# comment\n\nlocalhost:5000=admin:pw=x' } });
  t.deepEqual(await lines.get('ghcr.io'), { username: 'me', password: 'tok:with:colons', source: 'environment variable LADING_REGISTRY_AUTH (ghcr.io)' });
  t.is((await lines.get('localhost:5000'))?.password, 'pw=x');
  const bad = envProvider({ env: { LADING_REGISTRY_AUTH: '{"auths": {"x": {"password": "leaky-secret"' } });
  const err = await t.throwsAsync(bad.get('x'));
  t.false(err!.message.includes('leaky-secret'));
  const badLine = envProvider({ env: { LADING_REGISTRY_AUTH: 'no-equals-sign-secret' } });
  const err2 = await t.throwsAsync(badLine.get('x'));
  t.false(err2!.message.includes('no-equals-sign-secret'));
});

test('the default chain: explicit options, then the environment, then config files', async (t) => {
  const dir = await tempDir();
  try {
    await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { 'a.example.com': { auth: b64('file:filepw') }, 'b.example.com': { auth: b64('file:filepw') }, 'c.example.com': { auth: b64('file:filepw') } } }));
    const kc = defaultKeychain({
      credentials: { 'a.example.com': { username: 'opt', password: 'optpw' } },
      env: { DOCKER_CONFIG: dir, LADING_REGISTRY_AUTH: 'a.example.com=env:envpw\nb.example.com=env:envpw' },
      homedir: dir,
      ci: false,
    });
    t.is((await kc.get('a.example.com'))?.username, 'opt');
    t.is((await kc.get('b.example.com'))?.username, 'env');
    t.is((await kc.get('c.example.com'))?.username, 'file');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('ECR host names and a missing AWS SDK', async (t) => {
  t.deepEqual(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), { account: '123456789012', region: 'eu-west-1' });
  t.deepEqual(parseEcrHost('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com'), { account: '123456789012', region: 'us-gov-west-1' });
  t.deepEqual(parseEcrHost('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), { account: '123456789012', region: 'cn-north-1' });
  t.is(parseEcrHost('public.ecr.aws'), undefined);
  // The SDK is an optional peer: without it the provider is silent, not an error.
  const provider = ecrProvider({ loadSdk: () => import('@aws-sdk/nonexistent-' + 'package') as Promise<EcrSdk> });
  t.is(await provider.get('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), undefined);
});

test('the GCE metadata provider stays quiet off Google Cloud', async (t) => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const started = Date.now();
  t.is(await gceMetadataProvider({ endpoint: `127.0.0.1:${port}`, timeoutMs: 500 }).get('gcr.io'), undefined);
  t.true(Date.now() - started < 2000);
  t.is(await gceMetadataProvider({ endpoint: `127.0.0.1:${port}` }).get('ghcr.io'), undefined, 'only Google registries');
});

// ---- end to end: each CI provider's credential opens a real htpasswd registry ----

async function withHtpasswdRegistry<T>(user: string, password: string, fn: (host: string) => Promise<T>): Promise<T> {
  const dir = await tempDir();
  const file = path.join(dir, 'htpasswd');
  await fs.writeFile(file, execFileSync('htpasswd', ['-Bbn', user, password]));
  const reg = await startRegistry({ auth: ['htpasswd:', '  realm: lading-test', `  path: ${file}`].join('\n') });
  try {
    return await fn(reg.host);
  } finally {
    await reg.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function pushWith(keychain: Keychain, host: string, seed: string): Promise<string> {
  const { store, remove } = await tempStore();
  try {
    const img = await makeImage(store, seed, [4096]);
    const client = new RegistryClient({ keychain });
    const res = await client.pushImage(img, [parseReference(`${host}/ci/${seed}:1`)]);
    client.close();
    return res.digest === img.digest ? 'ok' : 'digest differs';
  } finally {
    await remove();
  }
}

registryTest('GitHub Actions: GITHUB_TOKEN for the configured host', async (t) => {
  await withHtpasswdRegistry('octocat', 'ghs_actions_token_123', async (host) => {
    const env = { GITHUB_ACTIONS: 'true', GITHUB_TOKEN: 'ghs_actions_token_123', GITHUB_ACTOR: 'octocat' };
    t.is(await githubActionsProvider({ env }).get(host), undefined, 'only ghcr.io by default');
    t.is(await githubActionsProvider({ env: { ...env, GITHUB_ACTIONS: undefined } }).get('ghcr.io'), undefined, 'only inside Actions');
    t.is(await pushWith(new Keychain([githubActionsProvider({ env, hosts: [host] })]), host, 'github'), 'ok');
  });
});

registryTest('GCE metadata server: an access token as oauth2accesstoken', async (t) => {
  const token = 'ya29.metadata-token-456';
  let asked = 0;
  const metadata = http.createServer((req, res) => {
    asked++;
    if (req.headers['metadata-flavor'] !== 'Google' || req.url !== '/computeMetadata/v1/instance/service-accounts/default/token') {
      res.writeHead(403).end('missing Metadata-Flavor');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: token, expires_in: 3599, token_type: 'Bearer' }));
  });
  await new Promise<void>((r) => metadata.listen(0, '127.0.0.1', r));
  const endpoint = `127.0.0.1:${(metadata.address() as AddressInfo).port}`;
  try {
    await withHtpasswdRegistry('oauth2accesstoken', token, async (host) => {
      // GCE_METADATA_HOST is the variable Google's own libraries read.
      const provider = gceMetadataProvider({ env: { GCE_METADATA_HOST: endpoint }, matches: (h) => h === host });
      t.is(await pushWith(new Keychain([provider]), host, 'gce'), 'ok');
      t.is(asked, 1, 'the token is cached until it expires');
    });
  } finally {
    metadata.closeAllConnections();
    await new Promise<void>((r) => metadata.close(() => r()));
  }
});

registryTest('ECR: GetAuthorizationToken through the SDK, against a stand-in ECR API', async (t) => {
  // The stand-in speaks the ECR JSON protocol (X-Amz-Target) the real SDK uses.
  const calls: string[] = [];
  const api = http.createServer((req, res) => {
    calls.push(String(req.headers['x-amz-target']));
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(
      JSON.stringify({ authorizationData: [{ authorizationToken: b64('AWS:ecr-password-789'), expiresAt: Date.now() / 1000 + 43200, proxyEndpoint: 'https://x' }] }),
    );
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  // A stand-in for @aws-sdk/client-ecr (not installed here): the same two exports, calling the API over HTTP.
  const sdk: EcrSdk = {
    ECRClient: class {
      constructor(private readonly config: { region: string; endpoint?: string }) {}
      async send(command: unknown) {
        const res = await fetch(this.config.endpoint!, {
          method: 'POST',
          headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonEC2ContainerRegistry_V20150921.${(command as { name: string }).name}` },
          body: '{}',
        });
        const doc = (await res.json()) as { authorizationData: { authorizationToken: string; expiresAt: number }[] };
        return { authorizationData: doc.authorizationData.map((d) => ({ ...d, expiresAt: new Date(d.expiresAt * 1000) })) };
      }
    },
    GetAuthorizationTokenCommand: class {
      readonly name = 'GetAuthorizationToken';
    },
  };
  try {
    await withHtpasswdRegistry('AWS', 'ecr-password-789', async (host) => {
      const provider = ecrProvider({ env: { LADING_ECR_ENDPOINT: endpoint }, loadSdk: async () => sdk, match: (h) => (h === host ? { region: 'eu-west-1' } : undefined) });
      t.is(await pushWith(new Keychain([provider]), host, 'ecr'), 'ok');
      t.deepEqual(calls, ['AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken']);
      const cred = await provider.get(host);
      t.regex(cred!.source, /ECR GetAuthorizationToken \(region eu-west-1/);
      t.is(calls.length, 1, 'cached until it expires');
    });
  } finally {
    api.closeAllConnections();
    await new Promise<void>((r) => api.close(() => r()));
  }
});

test('a static credential names its source without the secret', async (t) => {
  const provider = staticProvider({ 'x.example.com': { username: 'u', password: 'pw-in-static' } });
  const cred = await new Keychain([provider]).get('x.example.com');
  t.false(cred!.source.includes('pw-in-static'));
  t.true(cred!.source.includes('explicit options'));
});
