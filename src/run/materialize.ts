/**
 * A root file system as plain files in a folder, applied layer by layer with whiteouts exactly as
 * a runtime would unpack it: `--output type=local`, and another stage's root for
 * `RUN --mount=type=bind,from=STAGE`. As root, owners are set as the image says; otherwise files
 * belong to the user running lading, as with buildx.
 */
import fs from 'node:fs/promises';
import { ERROR_CODES, fsError } from '../errors.ts';
import type { BlobSource } from '../image/image.ts';
import type { Descriptor } from '../image/types.ts';
import { decompressLayer } from '../layer/decompress.ts';
import { applyLayer } from './apply-layer.ts';
import { OwnerTable } from './ownership.ts';
import { RootResolver } from './safe-path.ts';

export async function materializeRootfs(dest: string, layers: Descriptor[], blobs: BlobSource, signal?: AbortSignal): Promise<void> {
  try {
    await fs.mkdir(dest, { recursive: true });
  } catch (err) {
    throw fsError(ERROR_CODES.OUTPUT, 'create the output folder', dest, err);
  }
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const ctx = { resolver: new RootResolver(dest), owners: new OwnerTable(uid, gid), canChown: uid === 0, signal };
  for (const layer of layers) {
    await applyLayer(ctx, await decompressLayer(await blobs.open(layer)));
  }
}
