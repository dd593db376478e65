/**
 * A layer's table of contents, read from its tar headers in one streaming pass (bodies are
 * skipped, except the few small files FsIndex keeps).
 */
import type { Readable } from 'node:stream';
import { decompressLayer } from './decompress.ts';
import { KEPT_FILES, classifyEntry, emptyIndexedLayer, type FsNode, type IndexedLayer } from './fs-index.ts';
import { readTar } from './tar-reader.ts';

const KEPT_FILE_LIMIT = 1024 * 1024;

/** Read the entries of a layer blob (gzip or uncompressed, told apart by its first bytes). */
export async function listLayer(blob: Readable, signal?: AbortSignal): Promise<IndexedLayer> {
  const layer = emptyIndexedLayer();
  await readTar(
    await decompressLayer(blob),
    async (entry, body) => {
      const node: FsNode = { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size, mtime: entry.mtime };
      if (entry.linkname !== undefined) node.linkname = entry.linkname;
      classifyEntry(layer, entry.path, node);
      if (entry.type === 'file' && KEPT_FILES.has(entry.path) && entry.size <= KEPT_FILE_LIMIT) {
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        layer.files[entry.path] = Buffer.concat(chunks).toString('utf8');
      }
    },
    { signal },
  );
  return layer;
}
