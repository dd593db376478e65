/**
 * Push a generated ~200 MB, 4-layer image (incompressible bytes with some text, built into an OCI
 * layout) to a fresh local Distribution registry: lading with node-fetch, lading with Node's
 * undici fetch, and `skopeo copy oci:DIR docker://…` of the same folder, interleaved in one run.
 * Every push goes to a fresh registry: skopeo remembers where it pushed a blob (its blob-info
 * cache) and would mount it from an earlier repository of the same registry instead of sending
 * it. Reports medians of three.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { assembleImage } from '../src/image/mutate.ts';
import type { ImageConfig } from '../src/image/types.ts';
import type { LayerEntry } from '../src/layer/entry.ts';
import { writeLayer } from '../src/layer/write-layer.ts';
import { readOciLayoutImage, writeOciLayout } from '../src/output/oci-layout.ts';
import { RegistryClient, parseReference, type HttpClientKind } from '../src/registry/index.ts';
import { BlobStore, storeBlobSource } from '../src/store/blob-store.ts';
import { startRegistry } from '../test/helpers/registry.ts';
import type { BenchRow } from './types.ts';

const run = promisify(execFile);
const LAYERS = 4;
const RANDOM_PER_LAYER = 47 * 1024 * 1024;
const TEXT_PER_LAYER = 8 * 1024 * 1024;
const ROUNDS = 3;

async function buildLayout(work: string): Promise<{ dir: string; bytes: number }> {
  const store = await BlobStore.open(path.join(work, 'store'));
  const files = path.join(work, 'files');
  await fs.mkdir(files);
  const layers = [];
  const line = 'lading registry benchmark: a line of ordinary text that compresses well enough\n';
  for (let i = 0; i < LAYERS; i++) {
    const rnd = path.join(files, `random-${i}.bin`);
    const txt = path.join(files, `text-${i}.txt`);
    await fs.writeFile(rnd, randomBytes(RANDOM_PER_LAYER));
    await fs.writeFile(txt, `${i}`.repeat(1) + line.repeat(Math.ceil(TEXT_PER_LAYER / line.length)));
    const entries: LayerEntry[] = [
      { path: `bench/random-${i}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: (await fs.stat(rnd)).size, source: { kind: 'path', path: rnd } },
      { path: `bench/text-${i}.txt`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: (await fs.stat(txt)).size, source: { kind: 'path', path: txt } },
    ];
    layers.push(await writeLayer(entries, store, { level: 1 }));
  }
  const config: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } };
  const image = assembleImage({ config, layers, blobs: storeBlobSource(store) });
  const dir = path.join(work, 'layout');
  await writeOciLayout(dir, [{ item: image, refName: 'bench' }]);
  await fs.rm(files, { recursive: true, force: true });
  return { dir, bytes: layers.reduce((a, l) => a + l.size, 0) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export default async function bench(): Promise<BenchRow[]> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-bench-push-'));
  try {
    const { dir, bytes } = await buildLayout(work);
    const img = await readOciLayoutImage(dir);
    const times: Record<'skopeo' | HttpClientKind, number[]> = { skopeo: [], 'node-fetch': [], undici: [] };
    const fresh = async (push: (host: string) => Promise<void>) => {
      const reg = await startRegistry();
      try {
        await push(reg.host);
      } finally {
        await reg.stop();
      }
    };
    const ours = (kind: HttpClientKind) =>
      fresh(async (host) => {
        const client = new RegistryClient({ http: kind });
        const started = performance.now();
        const res = await client.pushImage(img, [parseReference(`${host}/bench/${kind}:latest`)]);
        times[kind].push((performance.now() - started) / 1000);
        client.close();
        if (res.digest !== img.digest) throw new Error('pushed digest differs');
      });
    const skopeo = () =>
      fresh(async (host) => {
        const started = performance.now();
        await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:bench`, `docker://${host}/bench/skopeo:latest`]);
        times.skopeo.push((performance.now() - started) / 1000);
      });
    // One warm-up of each (page cache), then interleaved rounds.
    await skopeo();
    await ours('node-fetch');
    await ours('undici');
    for (const k of Object.keys(times) as (keyof typeof times)[]) times[k] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await skopeo();
      await ours('node-fetch');
      await ours('undici');
    }
    const mb = bytes / 1e6;
    process.stderr.write(`  registry push of ${mb.toFixed(0)} MB: ${JSON.stringify(times)}\n`);
    const peer = { name: 'skopeo copy oci:→docker://', value: median(times.skopeo) };
    return [
      { name: `registry push ${mb.toFixed(0)} MB, ${LAYERS} layers (node-fetch, default)`, ours: median(times['node-fetch']), unit: 's', peer, target: '≤ skopeo', met: median(times['node-fetch']) <= peer.value },
      { name: `registry push ${mb.toFixed(0)} MB, ${LAYERS} layers (undici)`, ours: median(times.undici), unit: 's', peer, target: '≤ skopeo', met: median(times.undici) <= peer.value },
    ];
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
