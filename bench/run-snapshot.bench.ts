/**
 * RUN snapshots (issue: RUN without privileges), each beside `buildah build` of the same step in
 * the same run (vfs storage, chroot isolation, private --root/--runroot; buildah as root only):
 * - a RUN writing 10,000 small files on a 100 MB base;
 * - a RUN touching one file in a 50,000-file base, and in a 5,000-file base: the snapshot must
 *   cost what the step wrote, so the two should be within 2x of each other;
 * - the same touch with the diff fallback (a walk of the root), to show what the overlay saves.
 * "Step" for us: Rootfs.create + base layers applied + run + snapshot + writeLayer (gzip) +
 * dispose; for buildah: `buildah build` of FROM base + the RUN, with the base already pulled.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleImage } from '../src/image/mutate.ts';
import type { ImageConfig, LayerDescriptor } from '../src/image/types.ts';
import type { LayerEntry } from '../src/layer/entry.ts';
import { writeLayer } from '../src/layer/write-layer.ts';
import { writeOciLayout } from '../src/output/oci-layout.ts';
import { Rootfs, type SnapshotKind } from '../src/run/index.ts';
import { BlobStore, storeBlobSource } from '../src/store/blob-store.ts';
import { busyboxEntries } from '../test/helpers/busybox.ts';
import type { BenchRow } from './types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache', 'bench-run');
const REPEAT = Number(process.env.BENCH_RUN_REPEAT ?? 3);

const WRITE_10K = 'mkdir /data-new && i=0; while [ $i -lt 10000 ]; do echo $i > /data-new/f$i; i=$((i+1)); done';
const TOUCH_ONE = 'echo touched >> /data/d0/f0';

interface BaseImage {
  name: string;
  store: BlobStore;
  layers: LayerDescriptor[];
  layout: string;
}

/** busybox plus one data layer, stored and written as an OCI layout; cached between runs. */
async function baseImage(name: string, data: () => LayerEntry[]): Promise<BaseImage> {
  const dir = path.join(CACHE, `${name}-v1`);
  const store = await BlobStore.open(path.join(dir, 'store'));
  const layout = path.join(dir, 'layout');
  const marker = path.join(dir, 'layers.json');
  try {
    const layers = JSON.parse(await fs.readFile(marker, 'utf8')) as LayerDescriptor[];
    return { name, store, layers, layout };
  } catch {
    // not built yet
  }
  const layers = [await writeLayer(busyboxEntries(), store, { level: 1 }), await writeLayer(data(), store, { level: 1 })];
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [] },
  };
  await writeOciLayout(layout, [{ item: assembleImage({ config, layers, blobs: storeBlobSource(store) }), refName: 'latest' }]);
  await fs.writeFile(marker, JSON.stringify(layers));
  return { name, store, layers, layout };
}

function bigFiles(totalBytes: number, fileBytes: number): () => LayerEntry[] {
  return () => {
    const entries: LayerEntry[] = [{ path: 'data', type: 'directory', mode: 0o755, uid: 0, gid: 0 }];
    for (let i = 0; i < totalBytes / fileBytes; i++) {
      const data = randomBytes(fileBytes);
      entries.push({ path: `data/blob${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, source: { kind: 'bytes', data } });
    }
    return entries;
  };
}

function manyFiles(count: number): () => LayerEntry[] {
  return () => {
    const entries: LayerEntry[] = [{ path: 'data', type: 'directory', mode: 0o755, uid: 0, gid: 0 }];
    for (let d = 0; d * 100 < count; d++) {
      entries.push({ path: `data/d${d}`, type: 'directory', mode: 0o755, uid: 0, gid: 0 });
      for (let f = 0; f < 100 && d * 100 + f < count; f++) {
        const data = Buffer.from(`file ${d}/${f}\n`);
        entries.push({ path: `data/d${d}/f${f}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, source: { kind: 'bytes', data } });
      }
    }
    return entries;
  };
}

interface OurTimes {
  step: number;
  snapshot: number;
  entries: number;
}

async function ours(base: BaseImage, script: string, snapshot: SnapshotKind, work: string, repeat = REPEAT): Promise<OurTimes> {
  const runs: OurTimes[] = [];
  for (let i = 0; i < repeat; i++) {
    const out = await BlobStore.open(path.join(work, `out-${i}`));
    const started = performance.now();
    const root = await Rootfs.create(path.join(work, `rootfs-${i}`), { snapshot });
    try {
      for (const descriptor of base.layers) await root.addLayer({ descriptor, open: async () => base.store.openRead(descriptor.digest) });
      const result = await root.run({ argv: ['/bin/sh', '-c', script], env: ['PATH=/usr/bin:/bin'], workdir: '/' });
      if (result.snapshot !== snapshot) throw new Error(`wanted a ${snapshot} snapshot, got ${result.snapshot}`);
      await writeLayer(result.entries, out);
      runs.push({ step: 0, snapshot: result.snapshotMs, entries: result.entries.length });
    } finally {
      await root.dispose();
    }
    runs[runs.length - 1]!.step = (performance.now() - started) / 1000;
    await fs.rm(path.join(work, `out-${i}`), { recursive: true, force: true });
  }
  const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { step: median(runs.map((r) => r.step)), snapshot: median(runs.map((r) => r.snapshot)), entries: runs[0]!.entries };
}

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** Seconds for `buildah build` of FROM base + RUN script; undefined when buildah cannot run here. */
async function buildah(base: BaseImage, script: string, work: string): Promise<number | undefined> {
  if (!has('buildah') || process.getuid?.() !== 0 || process.env.BENCH_SKIP_BUILDAH === '1') return undefined;
  const broot = path.join(work, 'buildah');
  await fs.mkdir(broot, { recursive: true });
  const common = ['--root', path.join(broot, 'root'), '--runroot', path.join(broot, 'runroot'), '--storage-driver', 'vfs'];
  const run = (args: string[]): { ms: number; stdout: string } => {
    const t0 = performance.now();
    const r = spawnSync('buildah', [...common, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.slice(-2000)}`);
    return { ms: performance.now() - t0, stdout: r.stdout };
  };
  // The base is pulled untimed: buildah starts, like us, with the base on the machine. buildah names
  // the image after the layout's path, which must then be a valid (lower-case, dot-free) reference.
  const alias = path.join(os.tmpdir(), `lading-bench-${process.pid}`, base.name);
  await fs.mkdir(path.dirname(alias), { recursive: true });
  await fs.rm(alias, { force: true });
  await fs.symlink(base.layout, alias);
  const id = run(['pull', '-q', `oci:${alias}:latest`]).stdout.trim().split('\n').pop()!;
  await fs.rm(path.dirname(alias), { recursive: true, force: true });
  run(['tag', id, `bench-${base.name}`]);
  await fs.writeFile(path.join(work, 'Dockerfile'), `FROM localhost/bench-${base.name}\nRUN ${script}\n`);
  const seconds = run(['build', '--isolation', 'chroot', '-q', '-t', 'bench-out', '-f', path.join(work, 'Dockerfile'), work]).ms / 1000;
  await fs.rm(broot, { recursive: true, force: true });
  return seconds;
}

export default async function runSnapshotBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-bench-run-'));
  try {
    const big = await baseImage('100mb', bigFiles(100 * 1024 * 1024, 1024 * 1024));
    const write = await ours(big, WRITE_10K, 'overlay', path.join(work, 'write'));
    const writePeer = await buildah(big, WRITE_10K, path.join(work, 'write-buildah'));
    rows.push({
      name: 'RUN writes 10,000 files, 100 MB base: snapshot',
      ours: write.snapshot,
      unit: 'ms',
      ...(writePeer !== undefined ? { peer: { name: 'buildah build (whole step)', value: writePeer * 1000 }, target: '≤ buildah', met: write.snapshot / 1000 <= writePeer } : {}),
    });
    rows.push({
      name: 'RUN writes 10,000 files, 100 MB base: whole step',
      ours: write.step,
      unit: 's',
      ...(writePeer !== undefined ? { peer: { name: 'buildah build', value: writePeer }, target: '≤ buildah', met: write.step <= writePeer } : {}),
    });

    const small = await baseImage('5k-files', manyFiles(5_000));
    const large = await baseImage('50k-files', manyFiles(50_000));
    const touchSmall = await ours(small, TOUCH_ONE, 'overlay', path.join(work, 'touch-5k'), REPEAT + 2);
    const touchLarge = await ours(large, TOUCH_ONE, 'overlay', path.join(work, 'touch-50k'), REPEAT + 2);
    const touchPeer = await buildah(large, TOUCH_ONE, path.join(work, 'touch-buildah'));
    rows.push({
      name: 'RUN touches 1 file, 50,000-file base: snapshot',
      ours: touchLarge.snapshot,
      unit: 'ms',
      ...(touchPeer !== undefined ? { peer: { name: 'buildah build (whole step)', value: touchPeer * 1000 }, target: '≤ buildah', met: touchLarge.snapshot / 1000 <= touchPeer } : {}),
    });
    rows.push({
      name: 'RUN touches 1 file, 50,000-file base: whole step',
      ours: touchLarge.step,
      unit: 's',
      ...(touchPeer !== undefined ? { peer: { name: 'buildah build', value: touchPeer }, target: '≤ buildah', met: touchLarge.step <= touchPeer } : {}),
    });
    rows.push({ name: 'RUN touches 1 file, 5,000-file base: snapshot', ours: touchSmall.snapshot, unit: 'ms' });
    const ratio = touchLarge.snapshot / touchSmall.snapshot;
    rows.push({ name: 'touch-1-file snapshot, 50,000 vs 5,000-file base', ours: ratio, unit: 'x', target: '≤ 2 (independent of base size)', met: ratio <= 2 });

    const diffSmall = await ours(small, TOUCH_ONE, 'diff', path.join(work, 'diff-5k'));
    const diffLarge = await ours(large, TOUCH_ONE, 'diff', path.join(work, 'diff-50k'));
    rows.push({ name: 'diff fallback: touch 1 file, 5,000-file base: snapshot', ours: diffSmall.snapshot, unit: 'ms' });
    rows.push({ name: 'diff fallback: touch 1 file, 50,000-file base: snapshot', ours: diffLarge.snapshot, unit: 'ms' });
    return rows;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
