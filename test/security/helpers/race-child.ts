/**
 * Builds a context again and again while another process rewrites its files, and checks after
 * each successful build that the cache key and the layer agree: a fresh copy of the context
 * holding exactly the bytes the layer got must hit the same cache record and give the same image.
 * Runs in its own process so that unhandled rejections are counted rather than fatal to a test
 * worker. Prints one JSON line.
 * Usage: node --import tsx race-child.ts '{"ctx":..., "cache":..., "work":..., "iterations":N}'
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, isLadingError } from '../../../src/index.ts';
import { decompressLayer } from '../../../src/layer/decompress.ts';
import { readTar } from '../../../src/layer/tar-reader.ts';
import { readOciLayoutImage } from '../../../src/output/oci-layout.ts';

const { ctx, cache, work, iterations } = JSON.parse(process.argv[2] ?? '{}') as { ctx: string; cache: string; work: string; iterations: number };
const unhandled: string[] = [];
process.on('unhandledRejection', (err) => unhandled.push(String((err as Error)?.message ?? err)));

const result = { built: 0, refused: 0, otherErrors: [] as string[], mismatches: [] as string[], refusals: [] as string[], unhandled };
for (let i = 0; i < iterations; i++) {
  const out = path.join(work, 'out');
  await fs.rm(out, { recursive: true, force: true });
  let digest: string;
  try {
    digest = (await build({ context: ctx, cacheDir: cache, outputs: [{ type: 'oci', dest: out }] })).digest;
  } catch (err) {
    if (isLadingError(err) && err.code === 'CONTEXT' && /chang/.test(err.message)) {
      result.refused++;
      result.refusals.push(err.message.replace(ctx, 'CTX'));
    } else result.otherErrors.push(String(err));
    continue;
  }
  result.built++;
  const verify = path.join(work, 'verify');
  await fs.rm(verify, { recursive: true, force: true });
  await fs.mkdir(verify);
  await fs.copyFile(path.join(ctx, 'Dockerfile'), path.join(verify, 'Dockerfile'));
  const image = await readOciLayoutImage(out);
  await readTar(await decompressLayer(await image.blobs.open(image.manifest.layers.at(-1)!)), async (entry, body) => {
    if (entry.type !== 'file') return;
    const file = path.join(verify, path.basename(entry.path));
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    await fs.writeFile(file, Buffer.concat(chunks));
    await fs.chmod(file, entry.mode);
  });
  const again = await build({ context: verify, cacheDir: cache });
  if (!again.steps.at(-1)?.cached || again.digest !== digest) {
    result.mismatches.push(`build ${i}: the layer's content keys to ${again.steps.at(-1)?.cached ? 'another' : 'no'} record (${again.digest} vs ${digest})`);
  }
}
// Let late rejections (after a failed layer write) surface before reporting.
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(`${JSON.stringify(result)}\n`);
