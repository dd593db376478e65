/**
 * The progress a library caller receives: layer bytes as they are hashed and compressed (with
 * the compressed total and the rate), and blob uploads and downloads with their rates.
 */
import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, pull, type BuildEvent } from '../../src/index.ts';
import type { RegistryEvent } from '../../src/registry/events.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['docker-registry'], 'progress events') as TestFn<{ registry: RunningRegistry }>;

test.before(async (t) => {
  t.context = { registry: await startRegistry() };
});
test.after.always(async (t) => {
  await t.context.registry?.stop();
});

const MIB = 1024 * 1024;

test('layer, upload and download progress carry bytes, totals and rates', async (t) => {
  const dir = await tempDir(t);
  const context = path.join(dir, 'ctx');
  await fs.mkdir(context);
  await fs.writeFile(path.join(context, 'big.bin'), randomBytes(24 * MIB));
  await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
  const tag = `${t.context.registry.host}/progress/app:1`;
  const events: BuildEvent[] = [];
  const result = await build({ context, cacheDir: path.join(dir, 'cache'), tags: [tag], outputs: [{ type: 'registry' }], sbom: false, provenance: false, onEvent: (e) => events.push(e) });

  const layer = events.filter((e): e is Extract<BuildEvent, { type: 'layer-progress' }> => e.type === 'layer-progress');
  t.true(layer.reduce((n, e) => n + e.bytes, 0) >= 24 * MIB, 'every uncompressed byte is reported');
  t.is(layer.at(-1)!.total, 24 * MIB);
  t.true(layer.every((e, i) => i === 0 || e.compressed >= layer[i - 1]!.compressed), 'the compressed total only grows');
  t.true(layer.at(-1)!.compressed > 0, 'compressed bytes are reported while the layer is written');
  t.true(layer.at(-1)!.bytesPerSecond > 0);

  const registryEvents = events.flatMap((e) => (e.type === 'registry' ? [e.event] : []));
  const bigLayer = result.image.manifest.layers[0]!;
  const uploads = registryEvents.filter((e): e is Extract<RegistryEvent, { type: 'blob-upload-progress' }> => e.type === 'blob-upload-progress' && e.digest === bigLayer.digest);
  t.true(uploads.length > 0);
  t.is(uploads.at(-1)!.sent, bigLayer.size);
  t.true(uploads.at(-1)!.bytesPerSecond > 0);

  const downloads: RegistryEvent[] = [];
  await pull(tag, { cacheDir: path.join(dir, 'other-cache'), onEvent: (e) => e.type === 'registry' && downloads.push(e.event) });
  const received = downloads.filter((e): e is Extract<RegistryEvent, { type: 'blob-download-progress' }> => e.type === 'blob-download-progress' && e.digest === bigLayer.digest);
  t.true(received.length > 0);
  t.is(received.at(-1)!.received, bigLayer.size);
  t.true(received.at(-1)!.bytesPerSecond > 0);
});
