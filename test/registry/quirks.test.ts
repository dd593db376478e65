/**
 * Registry quirks, each against a stand-in that behaves that way (helpers/quirky-registry.ts):
 * pushes must complete with the right digest, or fail saying what to do.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import type { LadingError } from '../../src/errors.ts';
import type { Image } from '../../src/image/image.ts';
import { Keychain, RegistryClient, parseReference, type RegistryEvent } from '../../src/registry/index.ts';
import type { RegistryClientOptions } from '../../src/registry/client.ts';
import { makeImage, makeIndex, tempStore, type TestStore } from './helpers/images.ts';
import { startQuirkyRegistry, type QuirkyRegistry, type Quirks } from './helpers/quirky-registry.ts';

interface Ctx {
  reg: QuirkyRegistry;
  store: TestStore;
  events: RegistryEvent[];
  image(sizes: number[], seed?: string): Promise<Image>;
  client(options?: RegistryClientOptions): RegistryClient;
}

async function withQuirks(quirks: Quirks, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const reg = await startQuirkyRegistry(quirks);
  const store = await tempStore();
  const clients: RegistryClient[] = [];
  const events: RegistryEvent[] = [];
  try {
    await fn({
      reg,
      store,
      events,
      image: (sizes, seed = `quirk-${Math.random()}`) => makeImage(store.store, seed, sizes),
      client: (options = {}) => {
        const c = new RegistryClient({ keychain: new Keychain([]), retryBaseMs: 5, onEvent: (e) => events.push(e), ...options });
        clients.push(c);
        return c;
      },
    });
  } finally {
    for (const c of clients) c.close();
    await reg.stop();
    await store.remove();
  }
}

function storedRight(t: { true(v: boolean, m?: string): void }, reg: QuirkyRegistry, img: Image): void {
  for (const l of img.manifest.layers) {
    const data = reg.blobs.get(l.digest);
    t.true(data !== undefined && `sha256:${createHash('sha256').update(data).digest('hex')}` === l.digest, `layer ${l.digest} stored intact`);
  }
}

for (const relativeLocation of [true, false]) {
  test(`${relativeLocation ? 'relative' : 'absolute'} Locations carrying a query, single use, for chunked and monolithic uploads`, async (t) => {
    await withQuirks({ relativeLocation, locationQuery: true, singleUseLocations: true }, async ({ reg, image, client }) => {
      const img = await image([600_000, 20_000]);
      const res = await client({ chunkSize: 128 * 1024 }).pushImage(img, [parseReference(`${reg.host}/q/app:1`)]);
      t.is(res.digest, img.digest);
      storedRight(t, reg, img);
      t.true(reg.log.filter((l) => l.method === 'PATCH').length >= 4);
      t.true(reg.log.every((l) => l.status < 400 || (l.method === 'HEAD' && l.status === 404)), 'no request was refused');
    });
  });
}

test('a PATCH answered 201 with a Range that never advances (ECR): we keep our own offset', async (t) => {
  await withQuirks({ patchStatus: 201, staleRange: true }, async ({ reg, image, client, events }) => {
    const img = await image([700_000]);
    const res = await client({ chunkSize: 200_000 }).pushImage(img, [parseReference(`${reg.host}/ecr/app:1`)]);
    t.is(res.digest, img.digest);
    storedRight(t, reg, img);
    t.false(reg.log.some((l) => l.status === 416), 'never re-sent a chunk at the wrong offset');
    t.true(events.some((e) => e.type === 'upload-adjusted' && /keeping our own offset/.test(e.reason)));
  });
});

test("the registry's minimum chunk size (OCI-Chunk-Min-Length, 5 MB on ECR) wins over a smaller chunkSize", async (t) => {
  const min = 5 * 1024 * 1024;
  await withQuirks({ minChunk: min }, async ({ reg, image, client }) => {
    const img = await image([12 * 1024 * 1024]);
    const res = await client({ chunkSize: 1024 * 1024 }).pushImage(img, [parseReference(`${reg.host}/min/app:1`)]);
    t.is(res.digest, img.digest);
    const patches = reg.log.filter((l) => l.method === 'PATCH');
    t.is(patches.length, 3);
    t.true(patches.slice(0, -1).every((p) => p.bodyBytes === min));
    storedRight(t, reg, img);
  });
});

for (const status of [405, 501]) {
  test(`a registry without chunked uploads (PATCH → ${status}) gets the blob in one request`, async (t) => {
    await withQuirks({ noChunked: status }, async ({ reg, image, client, events }) => {
      const img = await image([400_000]);
      const res = await client({ chunkSize: 100_000 }).pushImage(img, [parseReference(`${reg.host}/mono/app:1`)]);
      t.is(res.digest, img.digest);
      storedRight(t, reg, img);
      t.is(reg.log.filter((l) => l.method === 'PATCH').length, 1, 'one refused PATCH, then no more');
      t.true(events.some((e) => e.type === 'upload-adjusted' && /refused a chunk/.test(e.reason)));
    });
  });
}

test('a request size cap (413) shrinks the chunks, for chunked and for monolithic uploads', async (t) => {
  await withQuirks({ maxBody: 1024 * 1024 }, async ({ reg, image, client, events }) => {
    const img = await image([2_500_000, 1_500_000]);
    const res = await client({ chunkSize: 3 * 1024 * 1024 }).pushImage(img, [parseReference(`${reg.host}/cap/app:1`)]);
    t.is(res.digest, img.digest);
    storedRight(t, reg, img);
    t.true(events.some((e) => e.type === 'upload-adjusted' && /413/.test(e.reason)));
  });
});

test('read-after-write lag: an index refused while its children are invisible is retried', async (t) => {
  await withQuirks({ manifestLag: 600 }, async ({ reg, store, client, events }) => {
    const a = await makeImage(store.store, 'lag-a', [10_000]);
    const b = await makeImage(store.store, 'lag-b', [10_000], { os: 'linux', architecture: 'arm64' });
    const index = makeIndex([a, b]);
    const res = await client().pushImage(index, [parseReference(`${reg.host}/lag/app:1`)]);
    t.is(res.digest, index.digest);
    t.true(reg.log.some((l) => l.method === 'PUT' && l.path.endsWith('/manifests/1') && l.status === 400), 'the first index PUT met the lag');
    t.true(reg.log.some((l) => l.method === 'PUT' && l.path.endsWith('/manifests/1') && l.status === 201));
    t.false(events.some((e) => e.type === 'retry' && e.reason.includes('400')));
  });
});

test('HEAD on blobs refused with 401 while GET works (ECR Public): existence is asked with GET', async (t) => {
  await withQuirks({ headBlob401: true, bearer: true }, async ({ reg, image, client }) => {
    const img = await image([50_000]);
    const first = await client().pushImage(img, [parseReference(`${reg.host}/head/app:1`)]);
    t.is(first.blobsSkipped, 0);
    const again = await client().pushImage(img, [parseReference(`${reg.host}/head/app:1`)]);
    t.is(again.blobsSkipped, 2);
    t.is(again.bytesUploaded, 0);
    t.true(reg.log.some((l) => l.method === 'GET' && l.path.includes('/blobs/sha256:') && l.status === 200));
  });
});

test('a repository that must exist first: NAME_UNKNOWN with a hint, before any layer is sent', async (t) => {
  await withQuirks({ repositories: ['exists/app'] }, async ({ reg, image, client }) => {
    const img = await image([30_000]);
    const err = await t.throwsAsync(client().pushImage(img, [parseReference(`${reg.host}/missing/app:1`)]));
    t.is((err as LadingError).details.registryCode, 'NAME_UNKNOWN');
    t.regex(err!.message, /does not exist/);
    t.regex((err as LadingError).hint ?? '', /created before the first push/);
    t.is(reg.log.filter((l) => l.bodyBytes > 0).length, 0);
    const ok = await client().pushImage(img, [parseReference(`${reg.host}/exists/app:1`)]);
    t.is(ok.digest, img.digest);
  });
});

test('immutable tags: re-pushing the same digest is success, another digest is a clear error', async (t) => {
  await withQuirks({ immutableTags: true, manifestLag: 300 }, async ({ reg, image, client }) => {
    const img = await image([20_000], 'immutable-1');
    await client().pushImage(img, [parseReference(`${reg.host}/imm/app:v1`)]);
    const again = await client().pushImage(img, [parseReference(`${reg.host}/imm/app:v1`)]);
    t.is(again.digest, img.digest);
    const other = await image([20_000], 'immutable-2');
    const err = await t.throwsAsync(client().pushImage(other, [parseReference(`${reg.host}/imm/app:v1`)]));
    t.is((err as LadingError).details.registryCode, 'TAG_INVALID');
    t.regex(err!.message, /cannot be overwritten because the repository is immutable/);
  });
});
