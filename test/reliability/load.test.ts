/**
 * Load: eight CLI builds at once on one store, and fifty image pushes at once through one client
 * to the harness registry. Everything succeeds, the store verifies clean, equal inputs give equal
 * digests, and each process's peak memory (VmHWM / maxRSS) and open descriptors stay bounded.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { brokenTags, runCliToEnd, startCli, watchProcess } from './helpers/procs.ts';

const test = testNeeding(['docker-registry'], 'load');

const MEMORY_LIMIT_KIB = 500 * 1024;
const FD_LIMIT = 200;

test('8 builds at once on one store: all succeed, same inputs same digest, bounded memory and descriptors', async (t) => {
  const bb = await busyboxImage();
  const dir = await tempDir(t, 'lading-load-');
  const cache = path.join(dir, 'cache');
  // Four different contexts, each built twice at the same time: the twins race for the same blobs.
  const contexts: string[] = [];
  for (let c = 0; c < 4; c++) {
    const ctx = path.join(dir, `ctx${c}`);
    await fs.mkdir(path.join(ctx, 'data'), { recursive: true });
    for (let i = 0; i < 200; i++) await fs.writeFile(path.join(ctx, 'data', `f${i}.txt`), `context ${c} file ${i}\n`.repeat(50));
    await fs.writeFile(path.join(ctx, 'big.bin'), randomBytes(3 * 1024 * 1024));
    await fs.writeFile(path.join(ctx, 'Dockerfile'), `FROM busybox\nCOPY data/ /data/\nCOPY big.bin /big.bin\nENV CONTEXT=${c}\n`);
    contexts.push(ctx);
  }
  const runs = Array.from({ length: 8 }, (_, i) => {
    const ctx = contexts[i % 4]!;
    const run = startCli(['build', ctx, '--cache-dir', cache, '--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--progress', 'quiet', '--output', `type=oci,dest=${path.join(dir, `out${i}`)}`]);
    return { i, ctx, run, watch: watchProcess(run.child.pid!) };
  });
  const finished = await Promise.all(runs.map(async (r) => ({ ...r, end: await r.run.done, peak: r.watch.stop() })));
  for (const f of finished) {
    t.is(f.end.code, 0, `build ${f.i}: ${f.end.stderr}`);
    t.true(f.peak.hwmKiB > 0, 'the process was sampled');
    t.true(f.peak.hwmKiB < MEMORY_LIMIT_KIB, `build ${f.i}: peak RSS ${Math.round(f.peak.hwmKiB / 1024)} MiB`);
    t.true(f.peak.fds < FD_LIMIT, `build ${f.i}: ${f.peak.fds} open descriptors at most`);
  }
  t.log(`peak RSS per build (MiB): ${finished.map((f) => Math.round(f.peak.hwmKiB / 1024)).join(', ')}; descriptors: ${finished.map((f) => f.peak.fds).join(', ')}`);
  for (let c = 0; c < 4; c++) {
    const twins = finished.filter((f) => f.i % 4 === c).map((f) => f.end.stdout.trim());
    t.is(twins[0], twins[1], `context ${c}: both builds give the same digest`);
  }
  t.is(new Set(finished.map((f) => f.end.stdout.trim())).size, 4, 'different contexts give different digests');
  const verify = await runCliToEnd(['cache', 'verify', '--cache-dir', cache, '--json']);
  const report = JSON.parse(verify.stdout) as { blobs: number; corrupt: string[]; danglingRecords: string[]; strays: string[] };
  t.deepEqual([report.corrupt, report.danglingRecords, report.strays], [[], [], []]);
  t.deepEqual(await fs.readdir(path.join(cache, 'tmp')), []);
});

test('50 concurrent image pushes through one client: all succeed, bounded memory and descriptors', async (t) => {
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const dir = await tempDir(t, 'lading-load-push-');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'helpers', 'push-child.ts'), JSON.stringify({ host: registry.host, count: 50, size: 1024 * 1024, dir })], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const watch = watchProcess(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise((r) => child.once('close', r));
  const peak = watch.stop();
  const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null') as { pushed: number; failures: string[]; ms: number; baselineFds: number; maxFds: number; maxRssKiB: number } | null;
  t.truthy(r, stderr);
  if (!r) return;
  t.deepEqual(r.failures, []);
  t.is(r.pushed, 50);
  t.true(r.maxRssKiB < MEMORY_LIMIT_KIB, `peak RSS ${Math.round(r.maxRssKiB / 1024)} MiB`);
  t.true(Math.max(r.maxFds, peak.fds) < FD_LIMIT, `${Math.max(r.maxFds, peak.fds)} descriptors at most (${r.baselineFds} before)`);
  t.log(`50 pushes of 1 MiB in ${r.ms} ms; peak RSS ${Math.round(r.maxRssKiB / 1024)} MiB; descriptors ${r.baselineFds} before, ${Math.max(r.maxFds, peak.fds)} at most`);
  const tags = await brokenTags(registry.url);
  t.is(tags.tags.length, 50);
  t.deepEqual(tags.problems, []);
});
