/**
 * Cancelling a library build through its AbortSignal: mid-layer (while a big context file is
 * being compressed) and mid-push (while a layer is uploading). Either way the promise rejects
 * with INTERRUPTED, the store's tmp/ is empty, no partial blob is left in the store, the
 * registry holds no tag, and the next build of the same context succeeds and verifies clean.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, cacheVerify, isLadingError, type BuildEvent } from '../../src/index.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['docker-registry'], 'library cancellation') as TestFn<{ registry: RunningRegistry }>;

test.before(async (t) => {
  t.context = { registry: await startRegistry() };
});
test.after.always(async (t) => {
  await t.context.registry?.stop();
});

async function bigContext(dir: string, mib: number): Promise<string> {
  const context = path.join(dir, 'ctx');
  await fs.mkdir(context, { recursive: true });
  const handle = await fs.open(path.join(context, 'big.bin'), 'w');
  for (let i = 0; i < mib; i++) await handle.write(randomBytes(1024 * 1024));
  await handle.close();
  await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /data/big.bin\nCOPY Dockerfile /Dockerfile\n');
  return context;
}

/** Every file under `dir`, relative. */
async function files(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
  } catch {
    return [];
  }
}

async function tagsOf(registry: RunningRegistry, repository: string): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/${repository}/tags/list`);
  if (res.status === 404) return [];
  const body = (await res.json()) as { tags?: string[] | null };
  return body.tags ?? [];
}

async function expectCleanStore(t: ExecutionContext<unknown>, cache: string): Promise<void> {
  t.deepEqual(await files(path.join(cache, 'tmp')), [], "the store's tmp/ is empty");
  const leftovers = (await files(cache)).filter((f) => /\.(part|tmp)$/.test(f));
  t.deepEqual(leftovers, [], 'no partial file anywhere in the store');
  const report = await cacheVerify({ cacheDir: cache });
  t.deepEqual([report.corrupt, report.danglingRecords, report.strays], [[], [], []], 'the store verifies clean');
}

test('cancelling mid-layer: INTERRUPTED, no temporary files, no tag; the next build succeeds', async (t) => {
  const { registry } = t.context;
  const dir = await tempDir(t);
  const context = await bigContext(dir, 64);
  const cache = path.join(dir, 'cache');
  const tag = `${registry.host}/cancel/layer:1`;
  const controller = new AbortController();
  const seen: BuildEvent['type'][] = [];
  const error = await t.throwsAsync(
    build({
      context,
      cacheDir: cache,
      tags: [tag],
      push: true,
      signal: controller.signal,
      onEvent: (e) => {
        seen.push(e.type);
        if (e.type === 'layer-progress') controller.abort();
      },
    }),
  );
  t.true(isLadingError(error) && error.code === 'INTERRUPTED', `${error?.name}: ${error?.message}`);
  t.true(seen.includes('layer-progress'), 'the build was cancelled while the layer was being written');
  t.false(seen.includes('step-done'));
  await expectCleanStore(t, cache);
  t.deepEqual(await tagsOf(registry, 'cancel/layer'), [], 'nothing was tagged');

  const again = await build({ context, cacheDir: cache, tags: [tag], push: true });
  t.deepEqual(await tagsOf(registry, 'cancel/layer'), ['1']);
  t.is(again.pushed[0]?.digest, again.digest);
  await expectCleanStore(t, cache);
});

test('cancelling mid-push: INTERRUPTED, no tag and no temporary files; the next build pushes the same digest', async (t) => {
  const { registry } = t.context;
  const dir = await tempDir(t);
  const context = await bigContext(dir, 48);
  const cache = path.join(dir, 'cache');
  const tag = `${registry.host}/cancel/push:1`;
  const controller = new AbortController();
  let uploadStarted = false;
  const error = await t.throwsAsync(
    build({
      context,
      cacheDir: cache,
      tags: [tag],
      push: true,
      compression: 'none',
      // Small requests, so the upload is still going when the signal fires.
      chunkSize: 1024 * 1024,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'registry' && e.event.type === 'blob-upload-progress' && e.event.size > 1024 * 1024) {
          uploadStarted = true;
          controller.abort();
        }
      },
    }),
  );
  t.true(uploadStarted, 'the layer upload had started');
  t.true(isLadingError(error) && error.code === 'INTERRUPTED', `${error?.name}: ${error?.message}`);
  t.deepEqual(await tagsOf(registry, 'cancel/push'), [], 'no tag names a half-pushed image');
  await expectCleanStore(t, cache);

  const again = await build({ context, cacheDir: cache, tags: [tag], push: true, compression: 'none' });
  t.deepEqual(await tagsOf(registry, 'cancel/push'), ['1']);
  t.is(again.steps.filter((s) => s.cached).length, 2, 'the layers made before the cancelled push are reused');
});
