/**
 * Registries that lie, stall, flood and redirect (a loopback server of our own): every answer
 * ends in a clear LadingError, no credential reaches an error, an event or another host, and
 * nothing unverified lands in the store (its blobs, index and temporary folders are compared
 * before and after).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, isLadingError, type BuildEvent } from '../../src/index.ts';
import { Keychain, RegistryClient, staticProvider, type RegistryEvent } from '../../src/registry/index.ts';
import { BlobStore } from '../../src/store/blob-store.ts';
import { DEFAULT_TIMEOUT_MS, timeoutFromEnv } from '../../src/registry/http.ts';
import { sha256 } from '../../src/image/digest.ts';
import { tempDir } from '../helpers/cli.ts';
import { BASIC, PASSWORD, USER, startHostileRegistry, type HostileServer } from './helpers/hostile-registry.ts';
import { listTree } from './helpers/hostile-tar.ts';

// Builds in this file create their registry client from the environment: one second of silence is enough.
process.env.LADING_REGISTRY_TIMEOUT = '1';

const SECRET_FORMS = [PASSWORD, BASIC.slice('Basic '.length), Buffer.from(PASSWORD).toString('base64'), encodeURIComponent(PASSWORD)];

interface Harness {
  srv: HostileServer;
  client: RegistryClient;
  store: BlobStore;
  storeDir: string;
  events: RegistryEvent[];
  before: string[];
}

async function harness(t: ExecutionContext, options: { timeoutMs?: number } = {}): Promise<Harness> {
  const srv = await startHostileRegistry();
  t.teardown(() => srv.close());
  const storeDir = path.join(await tempDir(t, 'lading-hostile-reg-'), 'store');
  const store = await BlobStore.open(storeDir);
  const events: RegistryEvent[] = [];
  const client = new RegistryClient({
    keychain: new Keychain([staticProvider({ [srv.host]: { username: USER, password: PASSWORD } })]),
    timeoutMs: options.timeoutMs ?? 500,
    maxRetries: 1,
    retryBaseMs: 10,
    onEvent: (e) => events.push(e),
  });
  t.teardown(() => client.close());
  return { srv, client, store, storeDir, events, before: await listTree(storeDir) };
}

/** The error is ours, names what failed, and carries no credential in any form. */
function assertCleanError(t: ExecutionContext, err: unknown, code: string | string[], pattern: RegExp, extra: unknown[] = []): void {
  t.true(isLadingError(err), `a LadingError, not ${String(err)}`);
  if (!isLadingError(err)) return;
  t.true((Array.isArray(code) ? code : [code]).includes(err.code), `code ${err.code}: ${err.message}`);
  t.regex(err.message, pattern);
  const everything = [err.describe(), err.stack ?? '', JSON.stringify(err.details), ...extra.map((x) => JSON.stringify(x))].join('\n');
  for (const s of SECRET_FORMS) t.false(everything.includes(s), `no credential (${s.slice(0, 4)}…) in the error or events`);
}

async function pullFails(h: Harness, ref: string): Promise<unknown> {
  try {
    await h.client.pullImage(ref, { store: h.store, lazy: false });
  } catch (err) {
    return err;
  }
  throw new Error(`pulling ${ref} should have failed`);
}

async function assertStoreUnchanged(t: ExecutionContext, h: Harness, allowed: string[] = []): Promise<void> {
  const after = (await listTree(h.storeDir)).filter((p) => !allowed.some((a) => p.endsWith(a.replace(':', '/'))));
  t.deepEqual(after, h.before, 'the store holds nothing new');
  t.deepEqual(await fs.readdir(path.join(h.storeDir, 'tmp')), [], 'no temporary files left');
}

test('a blob whose bytes do not match its digest: DIGEST_MISMATCH, and that blob is not stored', async (t) => {
  const h = await harness(t);
  h.srv.route = (req, res, srv) => {
    if (!req.url?.endsWith(srv.image.layerDigest)) return false;
    const lie = Buffer.from(srv.image.layer);
    lie[lie.length - 5]! ^= 0xff;
    res.writeHead(200, { 'content-length': lie.length });
    res.end(lie);
    return true;
  };
  const err = await pullFails(h, `${h.srv.host}/app:latest`);
  assertCleanError(t, err, 'DIGEST_MISMATCH', /does not match its digest/, [h.events]);
  // The manifest and config were verified and may stay; the lying layer may not.
  t.false(await h.store.has(h.srv.image.layerDigest));
  await assertStoreUnchanged(t, h, [h.srv.image.manifestDigest, h.srv.image.configDigest]);
});

test('a manifest that does not match the digest asked for, or the digest the registry claims', async (t) => {
  const h = await harness(t);
  const forged = Buffer.from(h.srv.image.manifest.toString().replace('"schemaVersion":2', '"schemaVersion":2 '));
  h.srv.route = (req, res, srv) => {
    if (!req.url?.includes('/manifests/')) return false;
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': srv.image.manifestDigest });
    res.end(forged);
    return true;
  };
  assertCleanError(t, await pullFails(h, `${h.srv.host}/app@${h.srv.image.manifestDigest}`), 'DIGEST_MISMATCH', /does not match its digest/);
  assertCleanError(t, await pullFails(h, `${h.srv.host}/app:latest`), 'DIGEST_MISMATCH', /does not match its digest/);
  await assertStoreUnchanged(t, h);
});

test('a 100 MB manifest is refused after 4 MiB, without reading the rest', async (t) => {
  const h = await harness(t, { timeoutMs: 5000 });
  h.srv.route = async (req, res, srv) => {
    if (!req.url?.includes('/manifests/')) return false;
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': 100 * 1024 * 1024 });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    for (let i = 0; i < 100 && !res.destroyed; i++) {
      if (!res.write(chunk)) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r); });
      srv.bytesSent += chunk.length;
    }
    res.end();
    return true;
  };
  const err = await pullFails(h, `${h.srv.host}/app:latest`);
  assertCleanError(t, err, 'REGISTRY', /more than 4194304 bytes/);
  t.true(h.srv.bytesSent < 40 * 1024 * 1024, `the client stopped reading early (${h.srv.bytesSent} bytes sent)`);
  await assertStoreUnchanged(t, h);
});

test('endless redirects stop after a bounded number of hops with a clear error', async (t) => {
  const h = await harness(t);
  h.srv.route = (req, res) => {
    if (!req.url?.includes('/manifests/')) return false;
    const n = Number(new URL(req.url, 'http://x').searchParams.get('hop') ?? 0);
    res.writeHead(302, { location: `/v2/app/manifests/latest?hop=${n + 1}` });
    res.end();
    return true;
  };
  const err = await pullFails(h, `${h.srv.host}/app:latest`);
  assertCleanError(t, err, 'REGISTRY', /HTTP 302/);
  const hops = h.srv.seen.filter((s) => s.url.includes('/manifests/')).length;
  t.true(hops <= 12, `${hops} requests followed, a bounded number`);
  await assertStoreUnchanged(t, h);
});

test('a redirect to another host (and another port) never carries the credentials there', async (t) => {
  const h = await harness(t);
  const other = await startHostileRegistry({ address: '127.0.0.2', auth: false });
  const otherPort = await startHostileRegistry({ address: '127.0.0.1', auth: false });
  t.teardown(() => other.close());
  t.teardown(() => otherPort.close());
  h.srv.route = (req, res, srv) => {
    const m = /\/blobs\/(sha256:[a-f0-9]+)$/.exec(req.url ?? '');
    if (!m) return false;
    const to = m[1] === srv.image.layerDigest ? other : otherPort;
    res.writeHead(307, { location: `${to.origin}/v2/app/blobs/${m[1]}?signed=1` });
    res.end();
    return true;
  };
  // The other hosts serve the same honest blobs (as a CDN would), without asking for credentials.
  const image = await h.client.pullImage(`${h.srv.host}/app:latest`, { store: h.store, lazy: false });
  t.is(image.digest, h.srv.image.manifestDigest);
  t.true(await h.store.has(h.srv.image.layerDigest));
  t.true(h.srv.seen.some((s) => s.headers.authorization === BASIC), 'the registry itself got the credentials');
  for (const srv of [other, otherPort]) {
    t.true(srv.seen.length > 0, `${srv.host} was asked`);
    for (const s of srv.seen) {
      t.is(s.headers.authorization, undefined, `no Authorization header to ${srv.host}`);
      const raw = `${s.url}\n${s.rawHeaders.join('\n')}`;
      for (const form of SECRET_FORMS) t.false(raw.includes(form), `no credential in the request to ${srv.host}`);
    }
  }
});

test('slowloris: no headers, or a body trickling a byte at a time, times out with a clear error', async (t) => {
  const h = await harness(t, { timeoutMs: 400 });
  let mode: 'silent' | 'trickle-manifest' | 'trickle-blob' = 'silent';
  const timers = new Set<NodeJS.Timeout>();
  t.teardown(() => timers.forEach((x) => clearInterval(x)));
  h.srv.route = (req, res, srv) => {
    const url = req.url ?? '';
    const isManifest = url.includes('/manifests/');
    const isLayer = url.endsWith(srv.image.layerDigest);
    if (mode === 'silent' && isManifest) return true; // accept, then never answer
    const trickle = (mode === 'trickle-manifest' && isManifest) || (mode === 'trickle-blob' && isLayer);
    if (!trickle) return false;
    const body = isManifest ? srv.image.manifest : srv.image.layer;
    res.writeHead(200, { 'content-type': isManifest ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream', 'content-length': body.length, 'docker-content-digest': isManifest ? srv.image.manifestDigest : srv.image.layerDigest });
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed || i >= body.length) return clearInterval(timer);
      res.write(body.subarray(i, ++i));
    }, 50);
    timers.add(timer);
    return true;
  };
  for (const m of ['silent', 'trickle-manifest', 'trickle-blob'] as const) {
    mode = m;
    const started = Date.now();
    const err = await pullFails(h, `${h.srv.host}/app:latest`);
    const ms = Date.now() - started;
    assertCleanError(t, err, 'REGISTRY', m === 'silent' ? /no answer from .* within 0\.4 s/ : /stalled/);
    t.true(ms < 5000, `${m}: gave up after ${ms} ms`);
    t.false(await h.store.has(h.srv.image.layerDigest));
  }
  await assertStoreUnchanged(t, h, [h.srv.image.manifestDigest, h.srv.image.configDigest]);
});

test('the registry client has a default timeout, configurable by option and LADING_REGISTRY_TIMEOUT', (t) => {
  t.is(DEFAULT_TIMEOUT_MS, 60_000);
  t.is(timeoutFromEnv({}), 60_000);
  t.is(timeoutFromEnv({ LADING_REGISTRY_TIMEOUT: '2.5' }), 2500);
  const err = t.throws(() => timeoutFromEnv({ LADING_REGISTRY_TIMEOUT: 'soon' }));
  t.true(isLadingError(err) && err.code === 'USAGE');
});

test('malformed JSON (manifest, config) and hostile error bodies: clear errors, no echoed credential', async (t) => {
  const h = await harness(t);
  const notJson = Buffer.from('{"schemaVersion": 2, "layers": [');
  let mode = 'manifest';
  h.srv.route = (req, res, srv) => {
    const url = req.url ?? '';
    if (mode === 'manifest' && url.includes('/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha256(notJson) });
      res.end(notJson);
      return true;
    }
    if (mode === 'config' && url.includes('/manifests/')) {
      const config = Buffer.from('not json at all');
      const manifest = Buffer.from(srv.image.manifest.toString().replace(srv.image.configDigest, sha256(config)).replace(`"size":${srv.image.config.length}`, `"size":${config.length}`));
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(manifest);
      return true;
    }
    if (mode === 'config' && url.includes('/blobs/')) {
      res.writeHead(200);
      res.end('not json at all');
      return true;
    }
    if (mode === 'echo' && url.includes('/manifests/')) {
      // An error body that reflects what we sent, credentials included.
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: `bad request from ${req.headers.authorization} (${PASSWORD})`, detail: req.headers }] }));
      return true;
    }
    if (mode === 'html' && url.includes('/manifests/')) {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(`<html><body>${'<p>gateway says no</p>'.repeat(200_000)}</body></html>`);
      return true;
    }
    return false;
  };
  assertCleanError(t, await pullFails(h, `${h.srv.host}/app:latest`), 'IMAGE', /is not JSON/);
  mode = 'config';
  assertCleanError(t, await pullFails(h, `${h.srv.host}/app:latest`), 'IMAGE', /config .* is not JSON/);
  mode = 'echo';
  assertCleanError(t, await pullFails(h, `${h.srv.host}/app:latest`), 'REGISTRY', /HTTP 400: MANIFEST_INVALID/, [h.events]);
  mode = 'html';
  const err = await pullFails(h, `${h.srv.host}/app:latest`);
  assertCleanError(t, err, 'REGISTRY', /HTTP 502/);
  t.true((err as Error).message.length < 1000, 'a 4 MB error page is not pasted into the message');
  await assertStoreUnchanged(t, h);
});

test('through a build: a lying or stalling base registry fails the build clearly, the store keeps nothing unverified', async (t) => {
  const srv = await startHostileRegistry();
  t.teardown(() => srv.close());
  const dir = await tempDir(t, 'lading-hostile-reg-build-');
  const ctx = path.join(dir, 'ctx');
  const cache = path.join(dir, 'cache');
  await fs.mkdir(ctx);
  await fs.writeFile(path.join(ctx, 'a.txt'), 'a');
  await fs.writeFile(path.join(ctx, 'Dockerfile'), `FROM ${srv.host}/app:latest\nCOPY a.txt /a.txt\n`);
  const events: BuildEvent[] = [];
  const run = () => build({ context: ctx, cacheDir: cache, credentials: { [srv.host]: { username: USER, password: PASSWORD } }, onEvent: (e) => events.push(e) });
  // Honest first: the build works, and proves the credentials are in play.
  await run();
  await fs.rm(cache, { recursive: true });
  await BlobStore.open(cache);
  const before = await listTree(path.join(cache, 'blobs'));
  for (const misbehaviour of ['lie', 'stall'] as const) {
    srv.route = (req, res, s) => {
      if (!req.url?.endsWith(s.image.layerDigest)) return false;
      res.writeHead(200, { 'content-length': s.image.layer.length });
      if (misbehaviour === 'lie') res.end(Buffer.alloc(s.image.layer.length, 1));
      else res.write(s.image.layer.subarray(0, 10)); // then nothing, forever
      return true;
    };
    const err = await t.throwsAsync(run());
    assertCleanError(t, err, misbehaviour === 'lie' ? 'DIGEST_MISMATCH' : 'REGISTRY', misbehaviour === 'lie' ? /does not match its digest/ : /stalled/, [events]);
    t.false(await fs.access(path.join(cache, 'blobs', 'sha256', srv.image.layerDigest.slice(7))).then(() => true, () => false));
    const after = (await listTree(path.join(cache, 'blobs'))).filter((p) => !p.endsWith(srv.image.manifestDigest.slice(7)) && !p.endsWith(srv.image.configDigest.slice(7)));
    t.deepEqual(after, before, `${misbehaviour}: no new blob but the verified manifest and config`);
    t.deepEqual(await listTree(path.join(cache, 'index')), [], `${misbehaviour}: no cache record`);
    t.deepEqual(await fs.readdir(path.join(cache, 'tmp')), []);
  }
});

test('pushing: an upload sent to another host gets no credentials; a misreported blob digest stops the push before any tag, a misreported manifest digest at the first', async (t) => {
  const h = await harness(t);
  const image = await h.client.pullImage(`${h.srv.host}/app:latest`, { store: h.store, lazy: false });
  const other = await startHostileRegistry({ address: '127.0.0.2', auth: false });
  t.teardown(() => other.close());
  let misreport: 'none' | 'blob' | 'manifest' = 'none';
  const tagged: string[] = [];
  // The registry hands every upload to a storage host of its own (as some CDNs do) and takes
  // manifests itself; it knows no blob, so everything is uploaded.
  h.srv.route = (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'HEAD' && /\/blobs\/sha256:/.test(url)) {
      res.writeHead(404).end();
      return true;
    }
    if (req.method === 'POST' && /\/blobs\/uploads\/?(\?|$)/.test(url)) {
      res.writeHead(202, { location: `${other.origin}/storage/session-${Math.random().toString(16).slice(2)}`, 'content-length': '0' }).end();
      return true;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url);
    if (req.method === 'PUT' && manifest) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const digest = sha256(Buffer.concat(chunks));
        tagged.push(manifest[2]!);
        res.writeHead(201, { 'docker-content-digest': misreport === 'manifest' ? sha256('something else') : digest }).end();
      });
      return true;
    }
    return false;
  };
  other.route = (req, res) => {
    if (req.method !== 'PUT' || !(req.url ?? '').startsWith('/storage/')) return false;
    const digest = new URL(req.url ?? '', 'http://x').searchParams.get('digest') ?? '';
    req.on('end', () => res.writeHead(201, { 'docker-content-digest': misreport === 'blob' ? sha256('another blob') : digest }).end());
    return true;
  };

  await h.client.pushImage(image, [`${h.srv.host}/copy:1`]);
  t.deepEqual(tagged, ['1'], 'an honest round tags the image');
  t.true(other.seen.some((s) => s.method === 'PUT'), 'the blobs went to the storage host');
  for (const s of other.seen) {
    t.is(s.headers.authorization, undefined, 'no Authorization header to the storage host');
    const raw = `${s.url}\n${s.rawHeaders.join('\n')}`;
    for (const form of SECRET_FORMS) t.false(raw.includes(form), 'no credential in any request to the storage host');
  }

  const pushFails = (tags: string[]): Promise<unknown> =>
    h.client.pushImage(image, tags.map((tag) => `${h.srv.host}/copy:${tag}`)).then(
      () => undefined,
      (e: unknown) => e,
    );
  misreport = 'blob';
  tagged.length = 0;
  assertCleanError(t, await pushFails(['b1', 'b2']), 'DIGEST_MISMATCH', /stored blob sha256:[0-9a-f]{64} as sha256:/, h.events);
  t.deepEqual(tagged, [], 'a misreported blob: no manifest was sent, so no tag names a broken image');
  // A manifest PUT is the tag itself: the client cannot take back the first, but it stops there.
  misreport = 'manifest';
  tagged.length = 0;
  assertCleanError(t, await pushFails(['m1', 'm2']), 'DIGEST_MISMATCH', /stored manifest sha256:[0-9a-f]{64} as sha256:/, h.events);
  t.is(tagged.length, 1, 'the push stopped at the first misreported manifest, not tagging the rest');
});
