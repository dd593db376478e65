/**
 * Small layers built by hand with tar-stream (not lading's own writer, so the scanner is tested
 * against archives it did not make), held in memory: these are test fixtures of a few kilobytes.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { ScanLayer } from '../../../src/attest/scan/types.ts';

export type Entry =
  | { path: string; type?: 'file'; content: string | Buffer; mode?: number }
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'hardlink'; target: string };

export const file = (path: string, content: string | Buffer, mode = 0o644): Entry => ({ path, content, mode });
export const dir = (path: string): Entry => ({ path, type: 'dir' });
export const symlink = (path: string, target: string): Entry => ({ path, type: 'symlink', target });
export const hardlink = (path: string, target: string): Entry => ({ path, type: 'hardlink', target });
/** A whiteout deleting `path` from lower layers. */
export const whiteout = (path: string): Entry => {
  const slash = path.lastIndexOf('/');
  return file(`${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`, '');
};
export const opaque = (dirPath: string): Entry => file(`${dirPath}/.wh..wh..opq`, '');

export async function tarBytes(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const common = { name: e.path, mtime: new Date(0), uid: 0, gid: 0 };
    if (e.type === 'dir') pack.entry({ ...common, type: 'directory', mode: e.mode ?? 0o755 });
    else if (e.type === 'symlink') pack.entry({ ...common, type: 'symlink', linkname: e.target, mode: 0o777 });
    else if (e.type === 'hardlink') pack.entry({ ...common, type: 'link', linkname: e.target, mode: 0o644 });
    else pack.entry({ ...common, type: 'file', mode: e.mode ?? 0o644 }, typeof e.content === 'string' ? Buffer.from(e.content) : e.content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A layer of `entries`, gzip-compressed unless asked otherwise. */
export async function layer(entries: Entry[], options: { gzip?: boolean } = {}): Promise<ScanLayer> {
  const raw = await tarBytes(entries);
  const blob = options.gzip === false ? raw : gzipSync(raw);
  return {
    descriptor: {
      mediaType: options.gzip === false ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: sha(blob),
      size: blob.length,
      diffID: sha(raw),
    },
    // Small chunks, so readers meet entries split across reads as they would from disk.
    open: async () => Readable.from(chunked(blob, 1000)),
  };
}

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
