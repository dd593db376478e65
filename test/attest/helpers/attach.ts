/**
 * Fixtures for the attachment tests: the debootstrap bookworm minbase as an OCI layout folder (a
 * base image for `--build-context debian=oci-layout://DIR:bookworm`), cached beside the root it
 * was made from, and small helpers to read a layout's JSON.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { assembleImage } from '../../../src/image/mutate.ts';
import type { ImageConfig, Index, Manifest } from '../../../src/image/types.ts';
import { writeOciLayout } from '../../../src/output/oci-layout.ts';
import { debootstrapImage, hashOf, type DebootstrapImage } from './debootstrap.ts';

export interface DebianLayout {
  /** OCI layout folder with the image tagged `bookworm`. */
  dir: string;
  digest: string;
  debootstrap: DebootstrapImage;
}

let memo: Promise<DebianLayout> | undefined;

/** The minbase root's layer as a one-layer linux image in an OCI layout (made once, then reused). */
export function debianLayout(): Promise<DebianLayout> {
  memo ??= makeDebianLayout();
  return memo;
}

async function makeDebianLayout(): Promise<DebianLayout> {
  const debootstrap = await debootstrapImage();
  const dir = path.join(path.dirname(debootstrap.layer), 'oci-layout-v1');
  const marker = path.join(dir, 'lading-test-image.json');
  try {
    return { ...(JSON.parse(await fs.readFile(marker, 'utf8')) as { dir: string; digest: string }), debootstrap };
  } catch {
    // not made yet
  }
  const stat = await fs.stat(debootstrap.layer);
  const layer = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: await hashOf(debootstrap.layer, false),
    size: stat.size,
    diffID: await hashOf(debootstrap.layer, true),
  };
  const config: ImageConfig = {
    architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created_by: 'debootstrap --variant=minbase bookworm (lading test harness)' }],
  };
  const blobs = { open: async () => createReadStream(debootstrap.layer), read: async () => fs.readFile(debootstrap.layer) };
  const image = assembleImage({ config, layers: [layer], blobs });
  const staging = `${dir}.${process.pid}.tmp`;
  await fs.rm(staging, { recursive: true, force: true });
  await writeOciLayout(staging, [{ item: image, refName: 'bookworm' }]);
  await fs.writeFile(path.join(staging, 'lading-test-image.json'), JSON.stringify({ dir, digest: image.digest }));
  try {
    await fs.rename(staging, dir);
  } catch (err) {
    // Another test process made it first; its copy is identical.
    if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    await fs.rm(staging, { recursive: true, force: true });
  }
  return { dir, digest: image.digest, debootstrap };
}

/** A blob of a layout folder, parsed as JSON. */
export async function layoutJson<T = Manifest | Index>(dir: string, digest: string): Promise<T> {
  return JSON.parse(await fs.readFile(path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8')) as T;
}

export async function layoutIndex(dir: string): Promise<Index> {
  return JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as Index;
}
