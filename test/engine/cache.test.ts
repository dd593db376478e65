/**
 * The layer cache: content keys, no-op rebuilds that read no file content, exact invalidation,
 * metadata-only steps, --no-cache, and two builds sharing one store.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { buildProject, stepsCached, stepsMade, writeProject } from '../helpers/build.ts';
import { BlobStore } from '../../src/store/blob-store.ts';
import { busyboxIndex } from '../helpers/busybox.ts';
import { startHostileRegistry } from '../security/helpers/hostile-registry.ts';

const DOCKERFILE = `FROM busybox
WORKDIR /app
COPY package.json ./
COPY src/ ./src/
LABEL version=1
COPY late.txt /app/late.txt
CMD ["sh"]
`;

async function project(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  return writeProject(dir, {
    Dockerfile: DOCKERFILE,
    'package.json': '{"name":"x"}',
    'src/a.js': 'a',
    'src/b.js': 'b',
    'late.txt': 'late',
  });
}

test('a second build makes no layer, reads no file content, and gives the same digest', async (t) => {
  const p = await project(t);
  const first = await buildProject(p);
  t.deepEqual(stepsMade(first), ['WORKDIR /app', 'COPY package.json ./', 'COPY src/ ./src/', 'COPY late.txt /app/late.txt']);
  const second = await buildProject(p);
  t.is(second.digest, first.digest);
  t.deepEqual(stepsMade(second), []);
  t.is(stepsCached(second).length, 4);
  t.is(second.contentReads, 0, 'the stat cache answered for every context file');
});

test('changing one file rebuilds the step that reads it and the ones after it, nothing before', async (t) => {
  const p = await project(t);
  const first = await buildProject(p);
  await fs.writeFile(path.join(p.context, 'src/b.js'), 'b changed');
  const second = await buildProject(p);
  t.not(second.digest, first.digest);
  t.deepEqual(stepsCached(second), ['WORKDIR /app', 'COPY package.json ./']);
  t.deepEqual(stepsMade(second), ['COPY src/ ./src/', 'COPY late.txt /app/late.txt']);
  t.is(second.contentReads, 1, 'only the changed file was read again');
});

test('changing a late file rebuilds only that step', async (t) => {
  const p = await project(t);
  await buildProject(p);
  await fs.writeFile(path.join(p.context, 'late.txt'), 'later');
  const second = await buildProject(p);
  t.deepEqual(stepsMade(second), ['COPY late.txt /app/late.txt']);
});

test('metadata-only steps make no layer and changing them rebuilds no layer', async (t) => {
  const p = await project(t);
  const first = await buildProject(p);
  const history = first.image.config.history ?? [];
  t.true(history.find((h) => h.created_by === 'LABEL version=1')?.empty_layer === true);
  t.true(history.find((h) => h.created_by === 'CMD ["sh"]')?.empty_layer === true);
  await fs.writeFile(path.join(p.context, 'Dockerfile'), DOCKERFILE.replace('version=1', 'version=2'));
  const second = await buildProject(p);
  t.deepEqual(stepsMade(second), []);
  t.not(second.digest, first.digest, 'the config changed');
  t.deepEqual(second.image.manifest.layers, first.image.manifest.layers);
});

test('a mode change invalidates, an mtime change does not', async (t) => {
  const p = await project(t);
  await buildProject(p);
  await fs.utimes(path.join(p.context, 'package.json'), 12345, 12345);
  t.deepEqual(stepsMade(await buildProject(p)), []);
  await fs.chmod(path.join(p.context, 'package.json'), 0o600);
  // The changed step and every step after it (their parent key changed).
  t.deepEqual(stepsMade(await buildProject(p)), ['COPY package.json ./', 'COPY src/ ./src/', 'COPY late.txt /app/late.txt']);
});

test('--no-cache and --no-cache-filter run steps again, with the same result', async (t) => {
  const dir = await tempDir(t);
  const p = await writeProject(dir, {
    Dockerfile: 'FROM busybox AS base\nCOPY a /a\nFROM base AS final\nCOPY b /b\n',
    a: 'a',
    b: 'b',
  });
  const first = await buildProject(p);
  const all = await buildProject(p, { noCache: true });
  t.deepEqual(stepsMade(all), ['COPY a /a', 'COPY b /b']);
  t.is(all.digest, first.digest);
  const filtered = await buildProject(p, { noCacheFilter: ['final'] });
  t.deepEqual(stepsMade(filtered), ['COPY b /b']);
});

test('a cache record whose blob was pruned is a miss, not a broken image', async (t) => {
  const p = await project(t);
  const first = await buildProject(p);
  const store = await BlobStore.open(p.cache);
  await store.remove(first.image.manifest.layers.at(-1)!.digest);
  const second = await buildProject(p);
  t.deepEqual(stepsMade(second), ['COPY late.txt /app/late.txt']);
  t.is(second.digest, first.digest);
});

test('two builds of different images sharing one store at once both succeed', async (t) => {
  const dir = await tempDir(t);
  const a = await writeProject(path.join(dir, 'a'), { Dockerfile: 'FROM busybox\nCOPY . /a/\n', 'x.txt': 'x'.repeat(100000) });
  const b = await writeProject(path.join(dir, 'b'), { Dockerfile: 'FROM busybox\nCOPY . /b/\n', 'y.txt': 'y'.repeat(100000) });
  const cache = path.join(dir, 'shared-cache');
  const [ra, rb] = await Promise.all([buildProject({ ...a, cache }), buildProject({ ...b, cache })]);
  t.not(ra.digest, rb.digest);
  const store = await BlobStore.open(cache);
  // Every layer the builds made is in the shared store (the base's stay in its layout folder).
  for (const d of [ra, rb]) for (const s of d.steps) if (s.layer) t.true(await store.has(s.layer));
  for await (const digest of store.list()) {
    await t.notThrowsAsync(store.readBytes(digest), `blob ${digest} verifies`);
  }
});

test('--explain names what changed: a file, a build arg, the instruction, an earlier step', async (t) => {
  const dir = await tempDir(t);
  const p = await writeProject(dir, {
    Dockerfile: 'FROM busybox\nARG MODE=dev\nCOPY src/ /src/\nCOPY conf-$MODE.txt /conf\nCOPY late /late\n',
    'src/a.js': 'a',
    'src/b.js': 'b',
    'conf-dev.txt': 'dev',
    'conf-prod.txt': 'prod',
    late: 'late',
  });
  await buildProject(p, { explain: true });
  await fs.writeFile(path.join(p.context, 'src/b.js'), 'b2');
  const run = await buildProject(p, { explain: true, buildArgs: { MODE: 'prod' } });
  const reasons = Object.fromEntries(run.steps.filter((s) => s.missReason).map((s) => [s.text, s.missReason!]));
  t.regex(reasons['COPY src/ /src/']!, /input src\/b\.js \(changed\)/);
  t.regex(reasons['COPY conf-prod.txt /conf']!, /build arg or environment MODE changed|instruction changed/);
  t.regex(reasons['COPY late /late']!, /an earlier step changed/);
  const first = await buildProject(await writeProject(path.join(dir, 'fresh'), { Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' }), { explain: true });
  t.is(first.steps[0]!.missReason, 'no earlier build of this step is known');
});

test('a COPY whose content is unchanged reuses its layer by content when the base changes (no second compression)', async (t) => {
  const dir = await tempDir(t);
  const p = await writeProject(dir, { Dockerfile: 'FROM scratch\nCOPY a /a\nCOPY big /big\n', a: 'one', big: 'z'.repeat(300000) });
  const first = await buildProject(p);
  await fs.writeFile(path.join(p.context, 'a'), 'two');
  const second = await buildProject(p);
  const big = second.steps.find((s) => s.text === 'COPY big /big')!;
  t.false(big.cached, 'its key changed (an earlier step changed)');
  t.true(big.reusedByContent, 'but its content did not: the layer is reused, not rewritten');
  t.is(big.layer, first.steps.find((s) => s.text === 'COPY big /big')!.layer);
});

test('a cold COPY into an empty cache reads each file once; a fresh checkout of the same files hits its steps', async (t) => {
  const p = await project(t);
  const first = await buildProject(p);
  t.is(first.contentReads, 4, 'every copied context file was read');
  t.is(first.hashOnlyReads, 0, 'none was read a second time just for its digest: the layer writer hashed it');
  // The same files at another path: the stat cache knows none of them, but the keys computed
  // first (from a hashing pass) must equal the ones the first build computed after writing.
  const moved = await writeProject(path.join(p.dir, 'again'), {
    Dockerfile: DOCKERFILE,
    'package.json': '{"name":"x"}',
    'src/a.js': 'a',
    'src/b.js': 'b',
    'late.txt': 'late',
  });
  const second = await buildProject({ ...moved, cache: p.cache });
  t.deepEqual(stepsMade(second), [], 'every step hit the records the first build wrote');
  t.is(second.digest, first.digest);
  t.is(second.hashOnlyReads, 4, 'with records to hit, keys come first: files are hashed, and no layer reads them');
});

test('two platforms hash the context once and compress a platform-independent COPY once', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM busybox\nCOPY src/ /app/src/\nCOPY package.json /app/\n',
    'package.json': '{"name":"x"}',
    'src/a.js': 'a',
    'src/b.js': 'b',
  });
  const index = await busyboxIndex();
  const run = await buildProject(p, { platform: ['linux/amd64', 'linux/arm64'], buildContexts: { busybox: `oci-layout://${index.layoutDir}:latest` } });
  t.is(run.images.length, 2);
  t.is(run.contentReads, 3, 'each context file was read once, not once per platform');
  const copies = run.images.map((i) => i.image.manifest.layers.slice(-2).map((l) => l.digest));
  t.deepEqual(copies[0], copies[1], 'the COPY layers are the same blobs in both images');
  const layerWrites = run.events.filter((e) => e.type === 'step-done' && e.layer !== undefined).length;
  t.is(run.steps.filter((s) => s.reusedByContent).length, layerWrites - 2, 'the second platform reused both COPY layers by content');
});

/** Bytes this process has read through read(2) and friends, worker threads included. */
function bytesRead(): number {
  return Number(/rchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
}

test('with records in the store, a stage hashes the files it copies while its base image is still being pulled', async (t) => {
  const registry = await startHostileRegistry({ auth: false });
  t.teardown(() => registry.close());
  const dir = await tempDir(t);
  const data = randomBytes(6 * 1024 * 1024);
  const p = await writeProject(dir, { Dockerfile: `FROM ${registry.host}/app:latest\nCOPY data.bin /data.bin\n`, 'data.bin': '' });
  await fs.writeFile(path.join(p.context, 'data.bin'), data);
  // Something else built into this store before: it is not a first build, so keys come first.
  const other = await writeProject(path.join(dir, 'other'), { Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' });
  await buildProject({ ...other, cache: p.cache });

  // The registry answers the manifest only once the build has read the context file (or after
  // 10 s): without the overlap, the file would be read only after the answer.
  let start = 0;
  let readBeforeAnswer = 0;
  registry.route = async (req) => {
    if (req.method !== 'GET' || !/\/manifests\/latest$/.test(req.url ?? '')) return false;
    const until = Date.now() + 10_000;
    while (bytesRead() - start < data.length && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    readBeforeAnswer = bytesRead() - start;
    return false;
  };
  start = bytesRead();
  const run = await buildProject(p);
  t.true(readBeforeAnswer >= data.length, `the context file was hashed before the base manifest arrived (${readBeforeAnswer} bytes read by then)`);
  t.deepEqual(stepsMade(run), ['COPY data.bin /data.bin']);
});
