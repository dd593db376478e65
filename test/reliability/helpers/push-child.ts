/**
 * Pushes `count` images (one random layer of `size` bytes each) to a registry all at once through
 * one RegistryClient, sampling its own open descriptors, and prints a JSON line with the outcome,
 * the peak RSS and the most descriptors seen.
 * Usage: node --import tsx push-child.ts '{"host":"127.0.0.1:5000","count":50,"size":1048576,"dir":"/tmp/x"}'
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { assembleImage } from '../../../src/image/mutate.ts';
import { writeLayer } from '../../../src/layer/write-layer.ts';
import { RegistryClient } from '../../../src/registry/index.ts';
import { BlobStore, storeBlobSource } from '../../../src/store/blob-store.ts';

const { host, count, size, dir } = JSON.parse(process.argv[2] ?? '{}') as { host: string; count: number; size: number; dir: string };
const store = await BlobStore.open(path.join(dir, 'store'));
const images = [];
for (let i = 0; i < count; i++) {
  const data = randomBytes(size);
  const layer = await writeLayer([{ path: `blob-${i}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, size, source: { kind: 'bytes', data } }], store, { compression: 'none' });
  images.push(assembleImage({ config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, layers: [layer], blobs: storeBlobSource(store) }));
}
let maxFds = 0;
const fdsNow = (): number => readdirSync('/proc/self/fd').length;
const baselineFds = fdsNow();
const sampler = setInterval(() => (maxFds = Math.max(maxFds, fdsNow())), 10);
const client = new RegistryClient({ keychain: undefined });
const started = Date.now();
const results = await Promise.allSettled(images.map((img, i) => client.pushImage(img, [`${host}/load/p${i}:latest`])));
const ms = Date.now() - started;
clearInterval(sampler);
client.close();
const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String((r.reason as Error)?.message ?? r.reason));
process.stdout.write(`${JSON.stringify({ pushed: results.length - failures.length, failures, ms, baselineFds, maxFds, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
