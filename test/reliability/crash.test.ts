/**
 * Crash safety: `kill -9` the real CLI at random moments during builds and pushes (50 times in
 * CI; LADING_CRASH_ITERATIONS changes it). After each kill: `lading cache verify` finds the store
 * clean, the next build succeeds with the digest of an uninterrupted build, no temporary file of
 * a dead process survives that build, and every tag in the registry has all of its blobs.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { brokenTags, runCliToEnd, startCli, temporaries } from './helpers/procs.ts';

const test = testNeeding(['docker-registry'], 'crash safety');

const ITERATIONS = Number(process.env.LADING_CRASH_ITERATIONS ?? 50);

/** A context whose build takes about a second: 4 layers of incompressible data. */
async function bigContext(dir: string): Promise<string> {
  const ctx = path.join(dir, 'ctx');
  for (const part of ['a', 'b', 'c', 'd']) {
    await fs.mkdir(path.join(ctx, part), { recursive: true });
    for (let i = 0; i < 6; i++) await fs.writeFile(path.join(ctx, part, `f${i}.bin`), randomBytes(512 * 1024));
  }
  await fs.writeFile(
    path.join(ctx, 'Dockerfile'),
    'FROM busybox\nCOPY a/ /a/\nCOPY b/ /b/\nWORKDIR /work\nCOPY c/ /c/\nCOPY d/ /d/\nLABEL crash=test\n',
  );
  return ctx;
}

test('kill -9 at random moments during builds and pushes leaves a clean store and whole tags', async (t) => {
  const registry = await startRegistry();
  t.teardown(() => registry.stop());
  const bb = await busyboxImage();
  const dir = await tempDir(t, 'lading-crash-');
  const ctx = await bigContext(dir);
  const cache = path.join(dir, 'cache');
  const common = ['--build-context', `busybox=oci-layout://${bb.layoutDir}:latest`, '--progress', 'quiet'];

  // The uninterrupted build: its digest is what every later build must give.
  const baselineOut = path.join(dir, 'baseline');
  const baseline = await runCliToEnd(['build', ctx, ...common, '--cache-dir', path.join(dir, 'baseline-cache'), '--output', `type=oci,dest=${baselineOut}`, '-t', 'crash:base']);
  t.is(baseline.code, 0, baseline.stderr);
  const digest = baseline.stdout.trim();
  t.regex(digest, /^sha256:[a-f0-9]{64}$/);
  const cold = (await runCliToEnd(['build', ctx, ...common, '--cache-dir', path.join(dir, 'timing-cache'), '--no-cache'])).ms;
  t.log(`an uninterrupted cold build takes ${cold} ms`);
  await fs.rm(path.join(dir, 'timing-cache'), { recursive: true, force: true });
  const pushMs = (await runCliToEnd(['push', baselineOut, `${registry.host}/crash/timing:latest`, '--quiet'])).ms;
  t.log(`an uninterrupted push takes ${pushMs} ms`);

  const estimate = { build: cold, 'build-push': cold + pushMs, push: pushMs };
  const killedAt: string[] = [];
  let finishedBeforeKill = 0;
  const started = Date.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const kind = i % 3 === 0 ? 'build' : i % 3 === 1 ? 'build-push' : 'push';
    // Pushes go to a repository of their own, so each one moves its blobs (nothing to mount).
    const tag = kind === 'push' ? `${registry.host}/crash/p${i}:latest` : `${registry.host}/crash/b:t${i}`;
    const args =
      kind === 'build'
        ? ['build', ctx, ...common, '--cache-dir', cache, '--no-cache', '--output', `type=oci,dest=${path.join(dir, 'out')}`]
        : kind === 'build-push'
          ? ['build', ctx, ...common, '--cache-dir', cache, '--no-cache', '--push', '-t', tag]
          : ['push', baselineOut, tag, '--quiet'];
    const run = startCli(args, { LADING_CACHE_DIR: cache });
    // Somewhere within how long this kind of run takes (learnt from the runs that finished).
    const delay = Math.floor(20 + Math.random() * estimate[kind] * 0.9);
    const timer = setTimeout(() => run.child.kill('SIGKILL'), delay);
    const end = await run.done;
    clearTimeout(timer);
    if (end.signal === 'SIGKILL') killedAt.push(`${kind}@${delay}ms`);
    else {
      finishedBeforeKill++;
      estimate[kind] = Math.min(estimate[kind], end.ms);
      t.is(end.code, 0, `${kind} ${i} finished on its own: ${end.stderr}`);
    }

    const verify = await runCliToEnd(['cache', 'verify', '--cache-dir', cache, '--json']);
    t.is(verify.code, 0, verify.stderr);
    const report = JSON.parse(verify.stdout) as { corrupt: string[]; danglingRecords: string[]; strays: string[] };
    t.deepEqual([report.corrupt, report.danglingRecords, report.strays], [[], [], []], `iteration ${i} (${kind} killed after ${delay} ms): the store is clean`);

    const next = await runCliToEnd(['build', ctx, ...common, '--cache-dir', cache, '--output', `type=oci,dest=${path.join(dir, 'next')}`]);
    t.is(next.code, 0, `iteration ${i}: the next build succeeds: ${next.stderr}`);
    t.is(next.stdout.trim(), digest, `iteration ${i}: the next build gives the uninterrupted digest`);
    await fs.rm(path.join(dir, 'next'), { recursive: true, force: true });
    await fs.rm(path.join(dir, 'out'), { recursive: true, force: true });
    t.deepEqual(await temporaries(cache), [], `iteration ${i}: no temporary file of a killed process survives the next build`);

    const tags = await brokenTags(registry.url);
    t.deepEqual(tags.problems, [], `iteration ${i}: every tag has its manifest and blobs`);
  }
  const tags = await brokenTags(registry.url);
  t.log(`${ITERATIONS} runs in ${Math.round((Date.now() - started) / 1000)} s: ${killedAt.length} killed, ${finishedBeforeKill} finished first; ${tags.tags.length} tags, all whole`);
  t.true(killedAt.length >= ITERATIONS / 2, 'most runs were killed mid-way');
});
