/**
 * Hand-made tar archives (every header byte under our control, so names, sizes and types can be
 * anything a hostile image might hold) and OCI layout folders holding them as base images.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import zlib from 'node:zlib';
import { assembleImage } from '../../../src/image/mutate.ts';
import { sha256 } from '../../../src/image/digest.ts';
import type { ImageConfig, LayerDescriptor } from '../../../src/image/types.ts';
import { writeOciLayout } from '../../../src/output/oci-layout.ts';
import { BlobStore, storeBlobSource } from '../../../src/store/blob-store.ts';

export type RawType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';

export interface RawEntry {
  name: string;
  type?: RawType;
  /** Body (regular files). */
  data?: Buffer | string;
  /** Declared size, when it should differ from the body's (a lie). */
  size?: number;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
}

const TYPEFLAG: Record<RawType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** One 512-byte ustar header. Sizes beyond the octal field use GNU base-256, as GNU tar does. */
export function tarHeader(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const name = Buffer.from(e.name);
  if (name.length > 100) throw new Error(`name too long for this helper: ${e.name}`);
  name.copy(h, 0);
  h.write(octal(e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  if (size < 8 ** 11) h.write(octal(size, 12), 124, 'latin1');
  else {
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write(octal(0, 12), 136, 'latin1');
  h.write(TYPEFLAG[e.type ?? 'file'], 156, 'latin1');
  if (e.linkname) Buffer.from(e.linkname).copy(h, 157);
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  h.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A whole tar archive (two zero blocks at the end unless `truncate`). */
export function rawTar(entries: RawEntry[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    parts.push(tarHeader(e, e.size ?? body.length));
    if (body.length > 0) {
      parts.push(body);
      const pad = (512 - (body.length % 512)) % 512;
      parts.push(Buffer.alloc(pad));
    }
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export interface HostileBase {
  /** OCI layout folder holding the image, tagged `latest`. */
  layoutDir: string;
  digest: string;
  /** `oci-layout://DIR:latest`, for buildContexts. */
  ref: string;
}

/** A layer given as raw (uncompressed) tar bytes, or as a gzip file already on disk. */
export type RawLayer = Buffer | { gzipFile: string; diffID: string };

/** Write an OCI layout folder whose image has exactly these layers (gzip-compressed). */
export async function hostileBase(dir: string, layers: RawLayer[]): Promise<HostileBase> {
  const store = await BlobStore.open(path.join(dir, 'store'));
  const descs: LayerDescriptor[] = [];
  for (const layer of layers) {
    if (Buffer.isBuffer(layer)) {
      const gz = zlib.gzipSync(layer);
      const info = await store.putBytes(gz);
      descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: info.digest, size: info.size, diffID: sha256(layer) });
    } else {
      const { createReadStream } = await import('node:fs');
      const info = await store.putStream(createReadStream(layer.gzipFile));
      descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: info.digest, size: info.size, diffID: layer.diffID });
    }
  }
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: descs.map((_, i) => ({ created_by: `hostile layer ${i}` })),
  };
  const image = assembleImage({ config, layers: descs, blobs: storeBlobSource(store) });
  const layoutDir = path.join(dir, 'layout');
  await writeOciLayout(layoutDir, [{ item: image, refName: 'latest' }]);
  await fs.rm(path.join(dir, 'store'), { recursive: true, force: true });
  return { layoutDir, digest: image.digest, ref: `oci-layout://${layoutDir}:latest` };
}

/**
 * A tar bomb: one file of `bytes` zeros (plus a small file after it), gzip level 9, written to
 * `file` as a stream. Returns the uncompressed digest (the diffID).
 */
export async function writeTarBomb(file: string, bytes: number, after: RawEntry[] = []): Promise<{ diffID: string; gzipBytes: number }> {
  const hash = createHash('sha256');
  const gzip = zlib.createGzip({ level: 9 });
  const out = createWriteStream(file);
  gzip.pipe(out);
  const write = async (b: Buffer): Promise<void> => {
    hash.update(b);
    if (!gzip.write(b)) await once(gzip, 'drain');
  };
  await write(tarHeader({ name: 'bomb' }, bytes));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let left = bytes; left > 0; left -= zeros.length) await write(left >= zeros.length ? zeros : zeros.subarray(0, left));
  const pad = (512 - (bytes % 512)) % 512;
  if (pad) await write(Buffer.alloc(pad));
  await write(rawTar(after));
  gzip.end();
  await once(out, 'close');
  return { diffID: `sha256:${hash.digest('hex')}`, gzipBytes: (await fs.stat(file)).size };
}

/** Every path under `dir` (relative, sorted), symlinks not followed. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await fs.readdir(path.join(dir, rel));
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const r = rel ? `${rel}/${n}` : n;
      out.push(r);
      const st = await fs.lstat(path.join(dir, r));
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

export interface LayerFile {
  type: string;
  linkname?: string;
  content?: string;
  size: number;
}

/** The entries of every layer of the image in an OCI layout folder (contents of small files). */
export async function readLayoutLayers(layoutDir: string): Promise<Map<string, LayerFile>[]> {
  const { readOciLayoutImage } = await import('../../../src/output/oci-layout.ts');
  const { decompressLayer } = await import('../../../src/layer/decompress.ts');
  const { readTar } = await import('../../../src/layer/tar-reader.ts');
  const image = await readOciLayoutImage(layoutDir);
  const out: Map<string, LayerFile>[] = [];
  for (const layer of image.manifest.layers) {
    const files = new Map<string, LayerFile>();
    await readTar(await decompressLayer(await image.blobs.open(layer)), async (entry, body) => {
      const f: LayerFile = { type: entry.type, size: entry.size };
      if (entry.linkname !== undefined) f.linkname = entry.linkname;
      if (entry.type === 'file' && entry.size <= 64 * 1024) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        f.content = Buffer.concat(chunks).toString('utf8');
      }
      files.set(entry.path, f);
    });
    out.push(files);
  }
  return out;
}
