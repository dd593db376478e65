import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { buildProject, stepsMade, writeProject } from '../helpers/build.ts';
import { pruneCache, verifyStore, parseAge, parseSize } from '../../src/store/maintenance.ts';
import { BlobStore } from '../../src/store/blob-store.ts';

async function built(t: Parameters<typeof tempDir>[0]) {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM scratch\nCOPY a /a\nCOPY b /b\n', a: 'a'.repeat(5000), b: 'b'.repeat(5000) });
  const run = await buildProject(p);
  return { p, run };
}

test('verify finds a clean store clean, reports a corrupt blob, and --repair removes it and its record', async (t) => {
  const { p, run } = await built(t);
  t.deepEqual((await verifyStore(p.cache)).corrupt, []);
  const clean = await runCli(['cache', 'verify', '--cache-dir', p.cache]);
  t.is(clean.code, 0, clean.stderr);
  t.regex(clean.stdout, /the store is clean/);

  const victim = run.steps.find((s) => s.layer)!.layer!;
  const store = await BlobStore.open(p.cache);
  await fs.writeFile(store.path(victim), 'garbage');
  const bad = await runCli(['cache', 'verify', '--cache-dir', p.cache]);
  t.is(bad.code, 1);
  t.regex(bad.stdout, new RegExp(`corrupt: ${victim}`));
  const repaired = await runCli(['cache', 'verify', '--repair', '--cache-dir', p.cache]);
  t.is(repaired.code, 0);
  t.deepEqual((await verifyStore(p.cache)).corrupt, []);
  // The next build remakes what was lost and gives the same image.
  const again = await buildProject(p);
  t.deepEqual(stepsMade(again), ['COPY a /a'], 'only the lost layer is made again: the next key does not change');
  t.is(again.digest, run.digest);
});

test('prune by age removes old records and unreferenced blobs but keeps recent work', async (t) => {
  const { p } = await built(t);
  const nothingOld = await pruneCache(p.cache, { olderThanMs: 3600_000 });
  t.is(nothingOld.recordsRemoved, 0);
  t.is(nothingOld.blobsRemoved, 0);
  const later = Date.now() + 2 * 3600_000;
  const report = await pruneCache(p.cache, { olderThanMs: 3600_000, now: later });
  t.is(report.recordsRemoved, 6, 'two step records, the two content records of their layers, and the two marks of the keys they were built on');
  t.true(report.blobsRemoved >= 2);
  const rebuilt = await buildProject(p);
  t.is(stepsMade(rebuilt).length, 2);
});

test('prune by size keeps the most recently used within the limit; recent blobs are protected by the grace period', async (t) => {
  const { p } = await built(t);
  const protectedRun = await pruneCache(p.cache, { keepBytes: 0 });
  t.is(protectedRun.blobsRemoved, 0, 'everything was just used: a build may still need it');
  const report = await pruneCache(p.cache, { keepBytes: 0, now: Date.now() + 3600_000 });
  t.true(report.blobsRemoved >= 2);
  t.is(report.bytesKept, 0);
});

test('cache ls lists records with their layers; prune parses sizes and ages', async (t) => {
  const { p } = await built(t);
  const ls = await runCli(['cache', 'ls', '--json', '--cache-dir', p.cache]);
  t.is(ls.code, 0, ls.stderr);
  const listing = JSON.parse(ls.stdout) as { records: { kind: string; layer?: string }[] };
  t.is(listing.records.filter((r) => r.kind === 'step' && r.layer).length, 2);
  t.is(parseSize('10GB'), 10e9);
  t.is(parseSize('512MiB'), 512 * 1024 * 1024);
  t.is(parseAge('7d'), 7 * 86400e3);
  const badSize = await runCli(['cache', 'prune', '--keep-storage', 'lots', '--cache-dir', p.cache]);
  t.is(badSize.code, 2);
  t.true(await fs.stat(path.join(p.cache, 'index')).then(() => true));
});
