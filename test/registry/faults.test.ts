/**
 * Faults between us and a real registry, injected by a loopback proxy: dropped connections, 500,
 * 503 and 429 with Retry-After, a chunked upload cut halfway. Every push either completes with the
 * right digest, or fails with a clear error after a bounded number of tries, and a tag never
 * names a manifest whose blobs are missing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import type { LadingError } from '../../src/errors.ts';
import type { Image } from '../../src/image/image.ts';
import { RegistryClient, parseReference, type RegistryEvent } from '../../src/registry/index.ts';
import type { RegistryClientOptions } from '../../src/registry/client.ts';
import { makeImage, tempStore, type TestStore } from './helpers/images.ts';
import { startProxy, type Fault, type Proxy, type RecordedRequest } from './helpers/proxy.ts';

const test = testNeeding(['docker-registry', 'skopeo'], 'registry faults');
const run = promisify(execFile);

interface Ctx {
  reg: RunningRegistry;
  proxy: Proxy;
  store: TestStore;
  img: Image;
  events: RegistryEvent[];
  client(options?: RegistryClientOptions): RegistryClient;
}

async function withFaults(sizes: number[], fault: (r: RecordedRequest) => Fault, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const store = await tempStore();
  const clients: RegistryClient[] = [];
  try {
    const img = await makeImage(store.store, `faults-${Math.random()}`, sizes);
    proxy.fault = fault;
    const events: RegistryEvent[] = [];
    await fn({
      reg,
      proxy,
      store,
      img,
      events,
      client: (options = {}) => {
        const c = new RegistryClient({ retryBaseMs: 5, retryMaxMs: 2000, onEvent: (e) => events.push(e), ...options });
        clients.push(c);
        return c;
      },
    });
  } finally {
    for (const c of clients) c.close();
    await proxy.stop();
    await reg.stop();
    await store.remove();
  }
}

async function registryDigest(reg: RunningRegistry, repoTag: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg.host}/${repoTag}`], { encoding: 'utf8' });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/** Fault the first `times` requests matching `match`. */
function firstN(times: number, match: (r: RecordedRequest) => boolean, fault: Fault): (r: RecordedRequest) => Fault {
  let left = times;
  return (r) => (match(r) && left-- > 0 ? fault : undefined);
}

test('dropped connections on HEAD, POST and PUT are retried and the push completes', async (t) => {
  const drops: Record<string, number> = { HEAD: 1, POST: 1, PUT: 2 };
  await withFaults([200_000], (r) => (drops[r.method]! > 0 && drops[r.method]!-- > 0 ? { drop: true } : undefined), async ({ reg, proxy, img, events, client }) => {
    const res = await client().pushImage(img, [parseReference(`${proxy.host}/drops/app:1`)]);
    t.is(res.digest, img.digest);
    t.is(await registryDigest(reg, 'drops/app:1'), img.digest);
    t.true(proxy.requests.filter((r) => r.fault === 'drop').length >= 3);
    t.true(events.some((e) => e.type === 'retry'));
  });
});

test('500 and 503 answers are retried with backoff', async (t) => {
  let n = 0;
  await withFaults([100_000, 50_000], (r) => (r.method !== 'GET' && n++ % 3 === 0 ? { status: n % 2 ? 500 : 503 } : undefined), async ({ reg, proxy, img, events, client }) => {
    const res = await client().pushImage(img, [parseReference(`${proxy.host}/flaky/app:1`), parseReference(`${proxy.host}/flaky/app:2`)]);
    t.is(res.digest, img.digest);
    t.is(await registryDigest(reg, 'flaky/app:1'), img.digest);
    t.is(await registryDigest(reg, 'flaky/app:2'), img.digest);
    t.true(events.filter((e) => e.type === 'retry').length >= 2);
  });
});

test('429 with Retry-After is honoured', async (t) => {
  await withFaults([10_000], firstN(1, (r) => r.method === 'PUT' && r.path.includes('/manifests/'), { status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' }), async ({ reg, proxy, img, events, client }) => {
    const res = await client().pushImage(img, [parseReference(`${proxy.host}/limited/app:1`)]);
    t.is(res.digest, img.digest);
    const retry = events.find((e) => e.type === 'retry');
    t.truthy(retry);
    t.true(retry?.type === 'retry' && retry.delayMs >= 1000 && retry.reason === 'HTTP 429');
    t.is(await registryDigest(reg, 'limited/app:1'), img.digest);
  });
});

test('a chunk refused with 503 resumes from the registry\'s Range instead of starting over', async (t) => {
  const chunk = 256 * 1024;
  const second = (r: RecordedRequest) => r.method === 'PATCH' && r.headers['content-range'] === `${chunk}-${2 * chunk - 1}`;
  await withFaults([1_200_000], firstN(1, second, { status: 503 }), async ({ reg, proxy, img, events, client }) => {
    const res = await client({ chunkSize: chunk }).pushImage(img, [parseReference(`${proxy.host}/resume/app:1`)]);
    t.is(res.digest, img.digest);
    t.is(await registryDigest(reg, 'resume/app:1'), img.digest);
    const layer = img.manifest.layers[0]!;
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    const failed = patches.findIndex((r) => r.status === 503);
    t.true(failed > 0);
    t.true(proxy.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/') && r.status === 204), 'asked the registry where the session stands');
    t.is(String(patches[failed + 1]!.headers['content-range']), `${chunk}-${2 * chunk - 1}`, 'the same chunk again, not byte 0');
    t.is(proxy.requests.filter((r) => r.method === 'POST').length, 2, 'no new session for the layer (one POST per blob)');
    t.true(res.bytesUploaded < layer.size + 2 * chunk);
    t.true(events.some((e) => e.type === 'upload-adjusted' && /resuming at byte 262144/.test(e.reason)));
  });
});

test('a chunked upload cut halfway still completes with the right digest', async (t) => {
  const chunk = 256 * 1024;
  const second = (r: RecordedRequest) => r.method === 'PATCH' && r.headers['content-range'] === `${chunk}-${2 * chunk - 1}`;
  await withFaults([1_200_000], firstN(1, second, { cutAfterBytes: 100_000 }), async ({ reg, proxy, img, client }) => {
    const res = await client({ chunkSize: chunk }).pushImage(img, [parseReference(`${proxy.host}/cut/app:1`)]);
    t.is(res.digest, img.digest);
    t.is(await registryDigest(reg, 'cut/app:1'), img.digest);
    t.true(proxy.requests.some((r) => r.fault?.startsWith('cut')));
    // Distribution drops a session whose stored size disagrees with its signed state (the cut
    // chunk's bytes landed), so the status check answers 404 and the upload starts over.
    t.true(proxy.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/uploads/')));
  });
});

test('a registry that keeps failing: a clear error after a bounded number of tries, and no tag', async (t) => {
  await withFaults([30_000], (r) => (r.path.includes('/blobs/uploads/') ? { status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"storage backend down"}]}' } : undefined), async ({ reg, proxy, img, client }) => {
    const err = await t.throwsAsync(client({ maxRetries: 2 }).pushImage(img, [parseReference(`${proxy.host}/down/app:1`)]));
    t.is((err as LadingError).code, 'REGISTRY');
    t.regex(err!.message, /503/);
    t.regex(err!.message, /UNAVAILABLE: storage backend down/);
    const uploads = proxy.requests.filter((r) => r.path.includes('/blobs/uploads/')).length;
    t.true(uploads <= 2 * 3, `upload requests: ${uploads}`);
    t.false(proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/manifests/')), 'no manifest was written');
    t.is(await registryDigest(reg, 'down/app:1'), undefined);
  });
});

test('a failure partway leaves no tag: blobs first, the tag last', async (t) => {
  let layerPuts = 0;
  await withFaults([40_000, 40_000], (r) => (r.method === 'PUT' && r.path.includes('/blobs/uploads/') && layerPuts++ === 1 ? { status: 400, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid"}]}' } : undefined), async ({ reg, proxy, img, client }) => {
    const err = await t.throwsAsync(client().pushImage(img, [parseReference(`${proxy.host}/half/app:1`)]));
    t.regex(err!.message, /BLOB_UPLOAD_INVALID/);
    t.is(await registryDigest(reg, 'half/app:1'), undefined);
    t.false(proxy.requests.some((r) => r.path.includes('/manifests/') && r.method === 'PUT'));
  });
});

test('a 4xx that will fail again is not retried, and its code and message reach the error', async (t) => {
  await withFaults([5_000], (r) => (r.method === 'PUT' && r.path.includes('/manifests/') ? { status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"bad layer"}]}' } : undefined), async ({ proxy, img, events, client }) => {
    const err = await t.throwsAsync(client().pushImage(img, [parseReference(`${proxy.host}/invalid/app@${img.digest}`)]));
    t.is((err as LadingError).code, 'REGISTRY');
    t.is((err as LadingError).details.status, 400);
    t.is((err as LadingError).details.registryCode, 'MANIFEST_INVALID');
    t.regex(err!.message, /MANIFEST_INVALID: manifest invalid/);
    t.is(proxy.requests.filter((r) => r.method === 'PUT' && r.path.includes('/manifests/')).length, 1);
    t.false(events.some((e) => e.type === 'retry'));
  });
});

test('a registry that drops every connection: an error naming the host after bounded tries', async (t) => {
  await withFaults([5_000], () => ({ drop: true }), async ({ proxy, img, client }) => {
    const err = await t.throwsAsync(client({ maxRetries: 3 }).pushImage(img, [parseReference(`${proxy.host}/gone/app:1`)]));
    t.is((err as LadingError).code, 'REGISTRY');
    t.true(err!.message.includes(proxy.host));
    t.true(proxy.requests.length <= 4 * 2, `requests: ${proxy.requests.length}`);
  });
});

test('an aborted signal stops a push with INTERRUPTED, and no tag is written', async (t) => {
  const controller = new AbortController();
  await withFaults([900_000], (r) => {
    if (r.method === 'PATCH') controller.abort();
    return undefined;
  }, async ({ reg, proxy, img, client }) => {
    const err = await t.throwsAsync(client({ signal: controller.signal, chunkSize: 256 * 1024 }).pushImage(img, [parseReference(`${proxy.host}/abort/app:1`)]));
    t.is((err as LadingError).code, 'INTERRUPTED');
    t.is(await registryDigest(reg, 'abort/app:1'), undefined);
  });
});
