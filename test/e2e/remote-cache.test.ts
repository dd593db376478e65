/**
 * The registry as the shared cache between machines: a second build with an empty local store
 * makes no layer, downloads no layer and uploads no layer bytes when it pushes to the same
 * registry; the cache entries are immutable tags, so re-exporting writes nothing.
 */
import { type TestFn } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { busyboxImage } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { registryWithBase, type RegistryBaseContext } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { writeProject, buildProject, stepsMade, stepsCached } from '../helpers/build.ts';
import type { BuildEvent } from '../../src/index.ts';

const test = testNeeding(['docker-registry'], 'remote cache') as TestFn<RegistryBaseContext>;

registryWithBase(test, async () => `${(await busyboxImage()).layoutDir}:latest`, 'base/busybox:1');

const files = (base: string) => ({
  Dockerfile: `FROM ${base} AS build\nWORKDIR /src\nCOPY src/ ./\nCOPY --chmod=0755 tool.sh /usr/local/bin/tool\nFROM ${base}\nCOPY --from=build /src /app\nCOPY config.json /etc/app.json\nCMD ["/usr/local/bin/tool"]\n`,
  'src/a.js': 'a'.repeat(40000),
  'src/b.js': 'b'.repeat(40000),
  'tool.sh': '#!/bin/sh\necho tool\n',
  'config.json': '{"x":1}',
});

test('a second machine with an empty store reuses every cached layer, downloads none and uploads none', async (t) => {
  const { registry, base } = t.context;
  const dir = await tempDir(t);
  const cacheRef = `${registry.host}/team/cache`;
  const one = await writeProject(path.join(dir, 'machine-1'), files(base));
  const first = await buildProject(one, { tags: [`${registry.host}/team/app:1`], push: true, sbom: false, provenance: false, cacheTo: [`type=registry,ref=${cacheRef},mode=max`] });
  t.is(first.cacheExported[0]!.written, 5);

  const two = await writeProject(path.join(dir, 'machine-2'), files(base));
  const events: BuildEvent[] = [];
  const second = await buildProject(two, {
    tags: [`${registry.host}/team/other:2`],
    push: true,
    // An SBOM would have to read every layer; this test proves none is moved.
    sbom: false,
    provenance: false,
    cacheFrom: [`type=registry,ref=${cacheRef}`],
    cacheTo: [`type=registry,ref=${cacheRef},mode=max`],
    onEvent: (e) => events.push(e),
  });
  t.is(second.digest, first.digest);
  t.deepEqual(stepsMade(second), []);
  t.is(stepsCached(second).length, 5);
  const registryEvents = events.flatMap((e) => (e.type === 'registry' ? [e.event] : []));
  const layerDigests = new Set(second.image.manifest.layers.map((l) => l.digest));
  const downloaded = registryEvents.filter((e) => e.type === 'blob-downloaded' && layerDigests.has(e.digest));
  t.deepEqual(downloaded, [], 'no layer was downloaded');
  const uploaded = registryEvents.filter((e) => e.type === 'blob-uploaded' && layerDigests.has(e.digest));
  t.deepEqual(uploaded, [], 'no layer bytes were uploaded: they were mounted');
  t.true(registryEvents.some((e) => e.type === 'blob-mounted'), 'layers from the cache repository were mounted into team/other');
  t.is(second.cacheExported[0]!.written, 0);
  t.is(second.cacheExported[0]!.existing, 5);
});

test('a changed file misses only its step and the ones after it; the rest come from the shared cache', async (t) => {
  const { registry, base } = t.context;
  const dir = await tempDir(t);
  const cacheRef = `${registry.host}/team/cache2:ci`;
  const one = await writeProject(path.join(dir, 'machine-1'), files(base));
  await buildProject(one, { cacheTo: [`type=registry,ref=${cacheRef},mode=max`] });
  const two = await writeProject(path.join(dir, 'machine-2'), files(base));
  await fs.writeFile(path.join(two.context, 'config.json'), '{"x":2}');
  const second = await buildProject(two, { cacheFrom: [`type=registry,ref=${cacheRef}`], outputs: [{ type: 'oci', dest: path.join(dir, 'out') }] });
  t.deepEqual(stepsMade(second), ['COPY config.json /etc/app.json']);
  t.is(stepsCached(second).length, 4);
});

test('--cache-repo (kaniko form) reads and writes one repository; mode=min keeps only the final image chain', async (t) => {
  const { registry, base } = t.context;
  const dir = await tempDir(t);
  const one = await writeProject(path.join(dir, 'm1'), files(base));
  const first = await buildProject(one, { cacheRepo: `${registry.host}/team/kaniko-style` });
  t.is(first.cacheExported.length, 1);
  t.is(first.cacheExported[0]!.written, 2, 'min mode: the two steps of the final stage');
  const two = await writeProject(path.join(dir, 'm2'), files(base));
  const second = await buildProject(two, { cacheRepo: `${registry.host}/team/kaniko-style` });
  t.deepEqual(stepsMade(second).sort(), ['COPY --chmod=0755 tool.sh /usr/local/bin/tool', 'COPY src/ ./', 'WORKDIR /src'].sort());
});
