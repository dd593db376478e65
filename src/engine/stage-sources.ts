/**
 * `COPY --from=<stage or image>`: the sources are resolved in that file system's index (wildcards
 * and symlinks inside its root) and only the files they name are read from its layers — no root
 * file system is extracted. Owners, modes and mtimes come from the layers.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import path from 'node:path/posix';
import { pipeline } from 'node:stream/promises';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import { compileComponent, hasWildcard } from '../context/glob.ts';
import type { BlobSource } from '../image/image.ts';
import type { LayerDescriptor } from '../image/types.ts';
import { decompressLayer } from '../layer/decompress.ts';
import { cleanImagePath } from '../layer/entry.ts';
import { FsIndex, type FsNode } from '../layer/fs-index.ts';
import { readTar } from '../layer/tar-reader.ts';
import type { CopyMatch, CopySourceFile } from './copy-plan.ts';

export interface FileSystemSource {
  /** For messages: the stage name or image reference. */
  name: string;
  fs: FsIndex;
  layers: LayerDescriptor[];
  blobs: BlobSource;
}

/** The paths a source names in `fs`: wildcards expanded, a named symlink followed. */
function matchPaths(fs: FsIndex, source: string): { matched: string; resolved: string }[] {
  const clean = cleanImagePath(source);
  let candidates = [''];
  for (const part of clean.split('/').filter(Boolean)) {
    const next: string[] = [];
    for (const prefix of candidates) {
      const dir = fs.resolve(prefix, true);
      if (!hasWildcard(part)) {
        next.push(prefix === '' ? part : `${prefix}/${part}`);
        continue;
      }
      const re = compileComponent(part);
      for (const name of fs.children(dir)) if (re.test(name)) next.push(prefix === '' ? name : `${prefix}/${name}`);
    }
    candidates = next;
  }
  const out: { matched: string; resolved: string }[] = [];
  for (const matched of candidates) {
    const resolved = fs.resolve(matched, true);
    if (resolved === '' || fs.get(resolved)) out.push({ matched, resolved });
  }
  return out;
}

function fileOf(rel: string, node: FsNode): CopySourceFile {
  const type = node.type === 'directory' ? 'directory' : node.type === 'symlink' ? 'symlink' : 'file';
  const f: CopySourceFile = { rel, type, mode: node.mode, uid: node.uid, gid: node.gid, size: type === 'file' ? node.size : 0, mtime: node.mtime };
  if (node.type === 'symlink' && node.linkname !== undefined) f.linkname = node.linkname;
  return f;
}

/**
 * Resolve `sources` in another file system. Only metadata is touched; `load()` reads the needed
 * file contents from the layers into `workDir` (on a cache miss).
 */
export function stageMatches(
  src: FileSystemSource,
  sources: string[],
  location: SourceLocation,
  instruction: string,
): { matches: CopyMatch[]; needed: Set<string> } {
  const matches: CopyMatch[] = [];
  const needed = new Set<string>();
  for (const source of sources) {
    const found = matchPaths(src.fs, source);
    if (found.length === 0) {
      throw new LadingError(ERROR_CODES.CONTEXT, `${instruction} --from=${src.name}: "${source}" does not exist in ${src.name}`, {
        location,
        hint: `check the path inside ${src.name}; it is resolved from its root`,
      });
    }
    for (const { matched, resolved } of found) {
      const node = resolved === '' ? ({ type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 } as FsNode) : src.fs.get(resolved)!;
      if (node.type === 'character-device' || node.type === 'block-device' || node.type === 'fifo') {
        throw new LadingError(ERROR_CODES.CONTEXT, `${instruction} --from=${src.name}: /${resolved} is a ${node.type.replace('-', ' ')}, which cannot be copied`, {
          location,
          hint: 'copy regular files, folders and symlinks only',
        });
      }
      const root = fileOf(resolved, node);
      const entries: CopySourceFile[] = [];
      if (root.type === 'directory') {
        for (const p of src.fs.descendants(resolved)) {
          const n = src.fs.get(p)!;
          if (n.type === 'character-device' || n.type === 'block-device' || n.type === 'fifo') continue;
          entries.push(fileOf(p, n));
          if (n.type === 'file') needed.add(p);
          if (n.type === 'hardlink' && n.linkname) needed.add(n.linkname);
        }
      } else {
        entries.push(root);
        if (node.type === 'file') needed.add(resolved);
        if (node.type === 'hardlink' && node.linkname) needed.add(node.linkname);
      }
      matches.push({ path: matched, source, root, entries });
    }
  }
  // Hard links become files sharing the content (and the body, through linkKey) of their target.
  for (const m of matches) {
    for (const f of [m.root, ...m.entries]) {
      const node = src.fs.get(f.rel);
      if (node?.type === 'hardlink' && node.linkname) {
        const target = src.fs.get(node.linkname);
        f.type = 'file';
        f.size = target?.size ?? 0;
        f.linkKey = `hardlink:${node.linkname}`;
      }
    }
  }
  return { matches, needed };
}

/** Read the contents of `needed` paths from the layers (the last layer to write a path wins). */
export async function loadContents(src: FileSystemSource, matches: CopyMatch[], needed: Set<string>, workDir: string, signal?: AbortSignal): Promise<void> {
  const stored = new Map<string, { file: string; digest: string }>();
  let counter = 0;
  // Entries are placed as an extractor would place them (a parent symlink is followed inside the
  // root), so a layer's `evil/x` under `evil -> /y` is the index's `y/x`.
  const placed = new FsIndex();
  for (const layer of src.layers) {
    await readTar(
      await decompressLayer(await src.blobs.open(layer)),
      async (entry, body) => {
        const node: FsNode = { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size, mtime: entry.mtime };
        if (entry.linkname !== undefined) node.linkname = entry.linkname;
        const where = placed.addEntry(entry.path, node);
        if (entry.type !== 'file' || !needed.has(where)) return;
        const file = path.join(workDir, String(counter++));
        const hash = createHash('sha256');
        body.on('data', (c: Buffer) => hash.update(c));
        await pipeline(body, createWriteStream(file));
        stored.set(where, { file, digest: `sha256:${hash.digest('hex')}` });
      },
      { signal },
    );
  }
  for (const m of matches) {
    for (const f of [m.root, ...m.entries]) {
      if (f.type !== 'file') continue;
      const node = src.fs.get(f.rel);
      const contentPath = node?.type === 'hardlink' && node.linkname ? node.linkname : f.rel;
      const content = stored.get(contentPath);
      if (!content) {
        throw new LadingError(ERROR_CODES.IMAGE, `${src.name}: the content of /${f.rel} is missing from its layers`, {
          hint: 'the image is inconsistent; rebuild it',
        });
      }
      f.source = { kind: 'path', path: content.file };
      const digest = content.digest;
      f.digest = async () => digest;
    }
  }
}
