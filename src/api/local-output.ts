/**
 * `--output type=local,dest=DIR`: the image's final root file system as plain files, applied
 * layer by layer with whiteouts, exactly as a runtime would unpack it. As root, owners are set
 * as the image says; otherwise files belong to the user running lading, as with buildx.
 */
import fs from 'node:fs/promises';
import { ERROR_CODES, fsError } from '../errors.ts';
import type { Image } from '../image/image.ts';
import { decompressLayer } from '../layer/decompress.ts';
import { applyLayer } from '../run/apply-layer.ts';
import { OwnerTable } from '../run/ownership.ts';
import { RootResolver } from '../run/safe-path.ts';

export async function writeRootfs(dest: string, image: Image, signal?: AbortSignal): Promise<void> {
  try {
    await fs.mkdir(dest, { recursive: true });
  } catch (err) {
    throw fsError(ERROR_CODES.OUTPUT, 'create the output folder', dest, err);
  }
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const ctx = { resolver: new RootResolver(dest), owners: new OwnerTable(uid, gid), canChown: uid === 0, signal };
  for (const layer of image.manifest.layers) {
    await applyLayer(ctx, await decompressLayer(await image.blobs.open(layer)));
  }
}
