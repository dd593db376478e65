/**
 * A layer's table of contents, read from its tar headers in one streaming pass (bodies are
 * skipped, except the few small files FsIndex keeps).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { ERROR_CODES, LadingError } from '../errors.ts';
import { layerCompression } from '../image/mediatypes.ts';
import { KEPT_FILES, classifyEntry, emptyIndexedLayer, type FsNode, type IndexedLayer } from './fs-index.ts';
import { cleanImagePath, type LayerEntryType } from './entry.ts';

const KEPT_FILE_LIMIT = 1024 * 1024;

const TYPES: Record<string, LayerEntryType | undefined> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

/** Read the entries of a layer blob (compressed as its media type says). */
export async function listLayer(blob: Readable, mediaType: string): Promise<IndexedLayer> {
  const compression = layerCompression(mediaType);
  if (compression === 'zstd') {
    throw new LadingError(ERROR_CODES.IMAGE, 'zstd-compressed layers cannot be read by this version', {
      hint: 'use a base image with gzip layers',
    });
  }
  const layer = emptyIndexedLayer();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const type = TYPES[header.type ?? 'file'];
    const p = cleanImagePath(header.name);
    if (type !== undefined) {
      const node: FsNode = {
        type,
        mode: (header.mode ?? 0) & 0o7777,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        size: header.size ?? 0,
        mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000),
      };
      if (header.linkname) node.linkname = type === 'hardlink' ? cleanImagePath(header.linkname) : header.linkname;
      classifyEntry(layer, p, node);
    }
    if (type === 'file' && KEPT_FILES.has(p) && (header.size ?? 0) <= KEPT_FILE_LIMIT) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        layer.files[p] = Buffer.concat(chunks).toString('utf8');
        next();
      });
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  const sink = extract as unknown as NodeJS.WritableStream;
  try {
    if (compression === 'gzip') await pipeline(blob, zlib.createGunzip(), sink);
    else await pipeline(blob, sink);
  } catch (err) {
    if (err instanceof LadingError) throw err;
    throw new LadingError(ERROR_CODES.TAR, `cannot read layer: ${(err as Error).message}`, { cause: err });
  }
  return layer;
}
