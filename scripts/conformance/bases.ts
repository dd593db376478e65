/**
 * The base images every case builds on, made locally so buildah and lading start from the very
 * same bytes: busybox (test/helpers/busybox.ts) and a Debian bookworm minbase made by debootstrap
 * (test/attest/helpers/debootstrap.ts), each an OCI layout folder tagged `latest` and cached under
 * .cache/test-images. A Dockerfile names them as it would on Docker Hub: `FROM busybox`,
 * `FROM debian:bookworm` (or `debian:bookworm-slim`: the same minbase).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CACHE_ROOT, busyboxImage } from '../../test/helpers/busybox.ts';
import { debootstrapImage } from '../../test/attest/helpers/debootstrap.ts';

export interface BaseImage {
  /** The names a Dockerfile's FROM uses for it (Docker Hub short names). */
  names: string[];
  /** OCI layout folder holding the image under the tag `latest`. */
  layoutDir: string;
}

export type BaseKind = 'busybox' | 'debian';

export const BASE_NAMES: Record<BaseKind, string[]> = {
  busybox: ['busybox', 'busybox:latest'],
  debian: ['debian:bookworm', 'debian:bookworm-slim'],
};

/** Which bases a case's Dockerfiles and build arguments refer to. */
export function basesNamedIn(texts: string[]): BaseKind[] {
  const all = texts.join('\n');
  const kinds: BaseKind[] = ['busybox'];
  if (/\bdebian\b/.test(all)) kinds.push('debian');
  return kinds;
}

export async function makeBase(kind: BaseKind): Promise<BaseImage> {
  if (kind === 'busybox') return { names: BASE_NAMES.busybox, layoutDir: (await busyboxImage()).layoutDir };
  return { names: BASE_NAMES.debian, layoutDir: await debianLayout() };
}

/**
 * The debootstrap layer (a gzip tar GNU tar wrote) wrapped by hand into an OCI layout: no lading
 * code touches this base, so a lading bug in reading layers cannot hide behind a base it made.
 */
async function debianLayout(): Promise<string> {
  const image = await debootstrapImage();
  const key = createHash('sha256').update(path.basename(path.dirname(image.layer))).update(path.basename(image.layer)).digest('hex').slice(0, 16);
  const layoutDir = path.join(CACHE_ROOT, `conformance-debian-${key}-v1`);
  if (existsSync(path.join(layoutDir, 'index.json'))) return layoutDir;

  const staging = `${layoutDir}.${process.pid}.tmp`;
  await fs.rm(staging, { recursive: true, force: true });
  const blobs = path.join(staging, 'blobs', 'sha256');
  await fs.mkdir(blobs, { recursive: true });
  const put = async (bytes: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    await fs.writeFile(path.join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };

  const layerHex = await sha256OfStream(createReadStream(image.layer));
  await fs.copyFile(image.layer, path.join(blobs, layerHex));
  const diffID = `sha256:${await sha256OfStream(createReadStream(image.layer).pipe(createGunzip()))}`;
  const layerSize = (await fs.stat(image.layer)).size;

  const config = await put(Buffer.from(JSON.stringify({
    architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: [diffID] },
    history: [{ created_by: 'debootstrap --variant=minbase bookworm (lading conformance base)' }],
  })));
  const manifest = await put(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerHex}`, size: layerSize }],
  })));
  await fs.writeFile(path.join(staging, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fs.writeFile(path.join(staging, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  try {
    await fs.rename(staging, layoutDir);
  } catch (err) {
    // Another run finished first; its copy holds the same bytes.
    await fs.rm(staging, { recursive: true, force: true });
    if (!existsSync(path.join(layoutDir, 'index.json'))) throw err;
  }
  return layoutDir;
}

async function sha256OfStream(stream: NodeJS.ReadableStream): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(stream, hash);
  return hash.digest('hex');
}
