/**
 * A busybox base image built from Debian's busybox-static: /bin/busybox, a symlink per applet,
 * /etc/passwd and /etc/group with root, `app` (1000) and nobody. Written as an OCI layout folder
 * under .cache/test-images, keyed by the busybox binary's digest, and reused between runs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LayerEntry } from '../../src/layer/entry.ts';
import { writeLayer } from '../../src/layer/write-layer.ts';
import { assembleImage, assembleIndex } from '../../src/image/mutate.ts';
import type { ImageConfig } from '../../src/image/types.ts';
import type { Image, ImageIndex } from '../../src/image/image.ts';
import { BlobStore, storeBlobSource } from '../../src/store/blob-store.ts';
import { writeOciLayout } from '../../src/output/oci-layout.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CACHE_ROOT = path.join(REPO_ROOT, '.cache', 'test-images');
export const BUSYBOX_BINARY = '/bin/busybox';

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
export const GROUP = 'root:x:0:\napp:x:1000:\nnobody:x:65534:\n';

const dir = (p: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path: p, type: 'directory', mode, uid, gid });
const text = (p: string, content: string, mode = 0o644): LayerEntry => {
  const data = Buffer.from(content);
  return { path: p, type: 'file', mode, uid: 0, gid: 0, size: data.length, source: { kind: 'bytes', data } };
};

/** The entries of the busybox root filesystem. */
export function busyboxEntries(binary = BUSYBOX_BINARY): LayerEntry[] {
  const size = readFileSync(binary).length;
  const applets = execFileSync(binary, ['--list-full'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'bin/busybox');
  const entries: LayerEntry[] = [
    dir('bin'), dir('sbin'), dir('usr'), dir('usr/bin'), dir('usr/sbin'), dir('etc'), dir('dev'), dir('proc'), dir('sys'),
    dir('tmp', 0o1777), dir('root', 0o700), dir('home'), dir('home/app', 0o755, 1000, 1000), dir('var'), dir('var/tmp', 0o1777),
    { path: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, size, source: { kind: 'path', path: binary } },
    text('etc/passwd', PASSWD),
    text('etc/group', GROUP),
  ];
  const seen = new Set(entries.map((e) => e.path));
  for (const applet of applets) {
    if (seen.has(applet)) continue;
    seen.add(applet);
    entries.push({ path: applet, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: '/bin/busybox' });
  }
  return entries;
}

export interface BusyboxImage {
  /** OCI layout folder holding the image, tagged `latest`. */
  layoutDir: string;
  digest: string;
}

let memo: Promise<BusyboxImage> | undefined;

/** Build (or reuse) the busybox base image as an OCI layout folder. */
export function busyboxImage(): Promise<BusyboxImage> {
  memo ??= buildBusybox();
  return memo;
}

const BUSYBOX_CONFIG = (architecture: string, history: string[]): ImageConfig => ({
  architecture,
  os: 'linux',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
  rootfs: { type: 'layers', diff_ids: [] },
  history: history.map((created_by) => ({ created_by })),
});

/**
 * An OCI layout folder under .cache/test-images named `name` (plus the busybox binary's digest),
 * made once by `make` in a private folder and renamed into place, so concurrent test processes
 * never see a half-written one.
 */
async function cachedLayout(name: string, make: (store: BlobStore) => Promise<Image | ImageIndex>): Promise<BusyboxImage> {
  const binDigest = createHash('sha256').update(readFileSync(BUSYBOX_BINARY)).digest('hex').slice(0, 16);
  const layoutDir = path.join(CACHE_ROOT, `${name}-${binDigest}-v1`);
  const doneMarker = path.join(layoutDir, 'lading-test-image.json');
  try {
    return JSON.parse(await fs.readFile(doneMarker, 'utf8')) as BusyboxImage;
  } catch {
    // not built yet
  }
  await fs.mkdir(CACHE_ROOT, { recursive: true });
  const work = await fs.mkdtemp(path.join(CACHE_ROOT, `tmp-${name}-`));
  try {
    const item = await make(await BlobStore.open(path.join(work, 'store')));
    const staging = path.join(work, 'layout');
    await writeOciLayout(staging, [{ item, refName: 'latest' }]);
    const result: BusyboxImage = { layoutDir, digest: item.digest };
    await fs.writeFile(path.join(staging, 'lading-test-image.json'), JSON.stringify(result));
    try {
      await fs.rename(staging, layoutDir);
    } catch (err) {
      // Another test process finished first; its copy is identical.
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
    return result;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

function buildBusybox(): Promise<BusyboxImage> {
  return cachedLayout('busybox', async (store) => {
    const layer = await writeLayer(busyboxEntries(), store);
    return assembleImage({ config: BUSYBOX_CONFIG('amd64', ['lading test harness: busybox-static rootfs']), layers: [layer], blobs: storeBlobSource(store) });
  });
}

let indexMemo: Promise<BusyboxImage> | undefined;

/**
 * A two-platform index (linux/amd64 and linux/arm64) in an OCI layout folder, tagged `latest`.
 * Both images hold the busybox root (an amd64 binary: fine for builds without RUN) plus
 * /etc/platform naming their platform, so the two differ as real per-platform images do.
 */
export function busyboxIndex(): Promise<BusyboxImage> {
  indexMemo ??= buildBusyboxIndex();
  return indexMemo;
}

function buildBusyboxIndex(): Promise<BusyboxImage> {
  return cachedLayout('busybox-index', async (store) => {
    const rootLayer = await writeLayer(busyboxEntries(), store);
    const images = [];
    for (const architecture of ['amd64', 'arm64']) {
      const marker = await writeLayer([text('etc/platform', `linux/${architecture}\n`)], store);
      const config = BUSYBOX_CONFIG(architecture, ['lading test harness: busybox-static rootfs', `platform marker ${architecture}`]);
      images.push(assembleImage({ config, layers: [rootLayer, marker], blobs: storeBlobSource(store) }));
    }
    return assembleIndex({ images });
  });
}
