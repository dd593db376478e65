/**
 * Push and pull against a real Distribution registry, checked with skopeo: what we push skopeo
 * reads back byte for byte, what skopeo pushes we pull; re-pushes move no layer bytes; a second
 * repository mounts; chunked uploads, lazy pulls, corrupt blobs, indexes and copies.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { readOciLayoutImage } from '../../src/output/oci-layout.ts';
import { RegistryClient, parseReference, type RegistryEvent } from '../../src/registry/index.ts';
import { makeImage, makeIndex, tempStore } from './helpers/images.ts';
import { startProxy } from './helpers/proxy.ts';

const test = testNeeding(['docker-registry', 'skopeo'], 'registry push/pull');

async function withRegistry<T>(fn: (reg: RunningRegistry) => Promise<T>): Promise<T> {
  const reg = await startRegistry();
  try {
    return await fn(reg);
  } finally {
    await reg.stop();
  }
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function skopeo(...args: string[]): string {
  return execFileSync('skopeo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('skopeo reads back exactly what we push (inspect and copy to an OCI folder)', async (t) => {
  await withRegistry(async (reg) => {
    const bb = await busyboxImage();
    const img = await readOciLayoutImage(bb.layoutDir);
    const client = new RegistryClient();
    const result = await client.pushImage(img, [parseReference(`${reg.host}/lading/busybox:1`), parseReference(`${reg.host}/lading/busybox:latest`)]);
    client.close();
    t.is(result.digest, img.digest);
    t.deepEqual(result.tags, [`${reg.host}/lading/busybox:1`, `${reg.host}/lading/busybox:latest`]);
    const raw = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/lading/busybox:latest`]);
    t.is(sha(raw), img.digest);
    t.true(raw.equals(img.manifestBytes));
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-skopeo-'));
    try {
      skopeo('copy', '--src-tls-verify=false', `docker://${reg.host}/lading/busybox:1`, `oci:${out}:copied`);
      const index = JSON.parse(await fs.readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      t.is(index.manifests[0]!.digest, img.digest);
      for (const d of [img.digest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)]) {
        const bytes = await fs.readFile(path.join(out, 'blobs', 'sha256', d.slice(7)));
        t.is(sha(bytes), d);
      }
    } finally {
      await fs.rm(out, { recursive: true, force: true });
    }
  });
});

test('we pull what skopeo pushed, into the store, verified', async (t) => {
  await withRegistry(async (reg) => {
    const bb = await busyboxImage();
    skopeo('copy', '--dest-tls-verify=false', `oci:${bb.layoutDir}:latest`, `docker://${reg.host}/skopeo/busybox:v1`);
    const { store, remove } = await tempStore();
    try {
      const client = new RegistryClient();
      const img = await client.pullImage(`${reg.host}/skopeo/busybox:v1`, { store });
      client.close();
      t.is(img.digest, bb.digest);
      for (const layer of img.manifest.layers) t.true(await store.has(layer.digest));
      t.true(await store.has(img.manifest.config.digest));
      const layer = img.manifest.layers[0]!;
      const chunks: Buffer[] = [];
      for await (const c of await img.blobs.open(layer)) chunks.push(c as Buffer);
      t.is(sha(Buffer.concat(chunks)), layer.digest);
      t.deepEqual(img.blobs.origins?.(layer.digest), [{ registry: reg.host, repository: 'skopeo/busybox' }]);
    } finally {
      await remove();
    }
  });
});

test('a second push uploads no layer bytes, and a second repository mounts', async (t) => {
  await withRegistry(async (reg) => {
    const proxy = await startProxy(reg.url);
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'mount', [300_000, 200_000]);
      const client = new RegistryClient();
      const first = await client.pushImage(img, [parseReference(`${proxy.host}/app/one:1`)]);
      const layerBytes = img.manifest.layers.reduce((a, l) => a + l.size, 0);
      t.is(first.bytesUploaded, layerBytes + img.configBytes.length);
      t.true(proxy.uploadedBytes() >= layerBytes);

      const before = proxy.uploadedBytes();
      const again = await client.pushImage(img, [parseReference(`${proxy.host}/app/one:1`)]);
      t.is(proxy.uploadedBytes() - before, 0, 'no request body reached an upload endpoint');
      t.is(again.bytesUploaded, 0);
      t.is(again.blobsSkipped, 3);

      const events: RegistryEvent[] = [];
      const other = await new RegistryClient({ onEvent: (e) => events.push(e) }).pushImage(img, [parseReference(`${proxy.host}/app/two:1`)]);
      // A fresh client knows nothing of the first push: it uploads. The same client mounts:
      t.true(other.bytesUploaded > 0);
      const beforeMount = proxy.uploadedBytes();
      const mounted = await client.pushImage(img, [parseReference(`${proxy.host}/app/three:1`)]);
      t.is(mounted.blobsMounted, 3);
      t.is(mounted.bytesUploaded, 0);
      t.is(proxy.uploadedBytes() - beforeMount, 0);
      t.true(proxy.requests.some((r) => r.method === 'POST' && r.path.includes('mount=') && r.path.includes('from=app%2Fone') && r.status === 201));

      // A pulled image knows where its layers live: a fresh client mounts them too.
      const pulled = await new RegistryClient().pullImage(`${proxy.host}/app/one:1`, { store, lazy: true });
      const beforePulled = proxy.uploadedBytes();
      const fromPulled = await new RegistryClient().pushImage(pulled, [parseReference(`${proxy.host}/app/four:1`)]);
      t.is(fromPulled.blobsMounted, 3);
      t.is(proxy.uploadedBytes() - beforePulled, 0);
      t.is(skopeo('inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg.host}/app/four:1`).trim(), img.digest);
      client.close();
    } finally {
      await proxy.stop();
      await remove();
    }
  });
});

test('large blobs go in chunks with Content-Range on every PATCH, and skopeo reads them', async (t) => {
  await withRegistry(async (reg) => {
    const proxy = await startProxy(reg.url);
    const { store, remove } = await tempStore();
    try {
      const img = await makeImage(store, 'chunks', [1_500_000]);
      const events: RegistryEvent[] = [];
      const client = new RegistryClient({ chunkSize: 256 * 1024, onEvent: (e) => events.push(e) });
      await client.pushImage(img, [parseReference(`${proxy.host}/chunky:1`)]);
      client.close();
      const patches = proxy.requests.filter((r) => r.method === 'PATCH');
      const layer = img.manifest.layers[0]!;
      t.is(patches.length, Math.ceil(layer.size / (256 * 1024)));
      let expected = 0;
      for (const p of patches) {
        const range = String(p.headers['content-range']);
        t.regex(range, /^\d+-\d+$/);
        const [a, b] = range.split('-').map(Number);
        t.is(a, expected);
        t.is(p.bodyBytes, b! - a! + 1);
        t.is(Number(p.headers['content-length']), p.bodyBytes);
        expected = b! + 1;
      }
      t.is(expected, layer.size);
      t.true(events.some((e) => e.type === 'blob-uploaded' && e.method === 'chunked'));
      t.is(skopeo('inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg.host}/chunky:1`).trim(), img.digest);
    } finally {
      await proxy.stop();
      await remove();
    }
  });
});

test('lazy pull downloads a layer on first open and keeps it in the store', async (t) => {
  await withRegistry(async (reg) => {
    const src = await tempStore();
    const dst = await tempStore();
    try {
      const img = await makeImage(src.store, 'lazy', [100_000]);
      const client = new RegistryClient();
      await client.pushImage(img, [parseReference(`${reg.host}/lazy:1`)]);
      const pulled = await client.pullImage(`${reg.host}/lazy:1`, { store: dst.store, lazy: true });
      const layer = pulled.manifest.layers[0]!;
      t.false(await dst.store.has(layer.digest));
      const chunks: Buffer[] = [];
      for await (const c of await pulled.blobs.open(layer)) chunks.push(c as Buffer);
      t.is(sha(Buffer.concat(chunks)), layer.digest);
      t.true(await dst.store.has(layer.digest));
      client.close();
    } finally {
      await src.remove();
      await dst.remove();
    }
  });
});

test('a blob that does not match its digest fails the pull and leaves nothing in the store', async (t) => {
  await withRegistry(async (reg) => {
    const src = await tempStore();
    const dst = await tempStore();
    try {
      const img = await makeImage(src.store, 'corrupt', [50_000]);
      const client = new RegistryClient();
      await client.pushImage(img, [parseReference(`${reg.host}/corrupt:1`)]);
      const layer = img.manifest.layers[0]!;
      const file = path.join(reg.dataDir, 'docker/registry/v2/blobs/sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data');
      const bytes = await fs.readFile(file);
      bytes[bytes.length - 100] ^= 0xff;
      await fs.writeFile(file, bytes);
      const err = await t.throwsAsync(client.pullImage(`${reg.host}/corrupt:1`, { store: dst.store }));
      t.is((err as { code?: string }).code, 'DIGEST_MISMATCH');
      t.false(await dst.store.has(layer.digest));
      t.deepEqual(await fs.readdir(path.join(dst.dir, 'tmp')), []);
      client.close();
    } finally {
      await src.remove();
      await dst.remove();
    }
  });
});

test('an index: children before the index, platform choice, copy of all platforms and mounts within a registry', async (t) => {
  await withRegistry(async (reg) => {
    const other = await startRegistry();
    const { store, remove } = await tempStore();
    try {
      const amd = await makeImage(store, 'multi-amd64', [40_000]);
      const arm = await makeImage(store, 'multi-arm64', [40_000], { os: 'linux', architecture: 'arm64', variant: 'v8' });
      const index = makeIndex([amd, arm]);
      const client = new RegistryClient();
      const pushed = await client.pushImage(index, [parseReference(`${reg.host}/multi:1`)]);
      t.is(pushed.digest, index.digest);
      const armResolved = await client.resolve(`${reg.host}/multi:1`, { platform: { os: 'linux', architecture: 'arm64' } });
      t.is(armResolved.descriptor.digest, arm.digest);
      t.is(armResolved.index?.descriptor.digest, index.digest);
      t.is(armResolved.config.architecture, 'arm64');
      const err = await t.throwsAsync(client.resolve(`${reg.host}/multi:1`, { platform: { os: 'linux', architecture: 's390x' } }));
      t.regex(err!.message, /has no image for linux\/s390x \(it has linux\/amd64, linux\/arm64\/v8\)/);

      const copied = await client.copy(`${reg.host}/multi:1`, `${other.host}/mirror/multi:1`, { allPlatforms: true });
      t.is(copied.digest, index.digest);
      t.is(copied.bytesUploaded, amd.manifest.layers[0]!.size + arm.manifest.layers[0]!.size + amd.configBytes.length + arm.configBytes.length);
      const raw = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${other.host}/mirror/multi:1`]);
      t.true(raw.equals(index.indexBytes));

      const same = await new RegistryClient().copy(`${reg.host}/multi:1`, `${reg.host}/multi-copy:1`, { allPlatforms: true });
      t.is(same.bytesUploaded, 0);
      t.is(same.blobsMounted, 4);
      const single = await new RegistryClient().copy(`${reg.host}/multi:1`, `${other.host}/single:amd`, { platform: { os: 'linux', architecture: 'amd64' } });
      t.is(single.digest, amd.digest);
      client.close();
    } finally {
      await other.stop();
      await remove();
    }
  });
});

test("the same push and pull through Node's own fetch (undici)", async (t) => {
  await withRegistry(async (reg) => {
    const src = await tempStore();
    const dst = await tempStore();
    try {
      const img = await makeImage(src.store, 'undici', [700_000, 30_000]);
      const client = new RegistryClient({ http: 'undici', chunkSize: 256 * 1024 });
      const res = await client.pushImage(img, [parseReference(`${reg.host}/undici/app:1`)]);
      t.is(res.digest, img.digest);
      const pulled = await client.pullImage(`${reg.host}/undici/app:1`, { store: dst.store });
      t.is(pulled.digest, img.digest);
      for (const l of img.manifest.layers) t.true(await dst.store.has(l.digest));
      client.close();
    } finally {
      await src.remove();
      await dst.remove();
    }
  });
});
