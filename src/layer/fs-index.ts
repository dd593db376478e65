/**
 * What an image's file system holds, without extracting it: every path's type and metadata, from
 * the layers' tar headers with whiteouts applied. COPY uses it to know whether a destination is a
 * directory, to resolve symlinks in destinations, to give parent directories their metadata, and
 * to read /etc/passwd and /etc/group for `--chown=name`.
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, cleanImagePath, type LayerEntryType } from './entry.ts';

export interface FsNode {
  type: LayerEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
}

/** Small files whose content the index keeps, because builds need to read them. */
export const KEPT_FILES = new Set(['etc/passwd', 'etc/group']);

export interface IndexedLayer {
  entries: [string, FsNode][];
  whiteouts: string[];
  opaqueDirs: string[];
  files: Record<string, string>;
}

export class FsIndex {
  private readonly nodes = new Map<string, FsNode>();
  private readonly files = new Map<string, string>();

  clone(): FsIndex {
    const copy = new FsIndex();
    for (const [k, v] of this.nodes) copy.nodes.set(k, v);
    for (const [k, v] of this.files) copy.files.set(k, v);
    return copy;
  }

  /** Apply one layer's changes on top of what the index holds. */
  /**
   * Apply one layer's changes on top of what the index holds. Like an extractor, a path whose
   * parent is a symlink lands where the link leads (inside the root): `evil -> /x` then
   * `evil/pwned` puts `pwned` in `x`, never under the link.
   */
  apply(layer: IndexedLayer): void {
    for (const dir of layer.opaqueDirs) this.removeBelow(this.inRoot(dir));
    for (const w of layer.whiteouts) {
      const p = this.inRoot(w);
      this.nodes.delete(p);
      this.files.delete(p);
      this.removeBelow(p);
    }
    const moved = new Map<string, string>();
    for (const [written, node] of layer.entries) {
      const p = this.inRoot(written);
      if (p !== written) moved.set(written, p);
      const existing = this.nodes.get(p);
      if (existing?.type === 'directory' && node.type !== 'directory') this.removeBelow(p);
      this.nodes.set(p, node);
      if (node.type !== 'file') this.files.delete(p);
    }
    for (const [p, content] of Object.entries(layer.files)) this.files.set(moved.get(p) ?? p, content);
  }

  /**
   * Apply one tar entry (in archive order) and say where it landed: what COPY --from uses to
   * find the content of an index path among a layer's entries.
   */
  addEntry(p: string, node: FsNode): string {
    const layer = emptyIndexedLayer();
    classifyEntry(layer, p, node);
    this.apply(layer);
    return this.inRoot(p);
  }

  /** `p` with symlinks in its parent folders resolved (its own last component kept as is). */
  inRoot(p: string): string {
    const clean = cleanImagePath(p);
    const slash = clean.lastIndexOf('/');
    if (slash < 0) return clean;
    const parent = this.resolve(clean.slice(0, slash), true);
    const name = clean.slice(slash + 1);
    return parent === '' ? name : `${parent}/${name}`;
  }

  private removeBelow(dir: string): void {
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const key of [...this.nodes.keys()]) if (key.startsWith(prefix) && key !== dir) this.nodes.delete(key);
    for (const key of [...this.files.keys()]) if (key.startsWith(prefix)) this.files.delete(key);
  }

  get(p: string): FsNode | undefined {
    return this.nodes.get(cleanImagePath(p));
  }

  /** Content of a kept small file (see KEPT_FILES), if the image has it. */
  fileContent(p: string): string | undefined {
    return this.files.get(cleanImagePath(p));
  }

  /** Resolve symlinks in `p` inside the image root; the last component is followed when asked. */
  resolve(p: string, followLast = true): string {
    const pending = cleanImagePath(p).split('/').filter(Boolean);
    const out: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '..') {
        out.pop();
        continue;
      }
      if (part === '.') continue;
      const candidate = [...out, part].join('/');
      const node = this.nodes.get(candidate);
      if (node?.type === 'symlink' && node.linkname !== undefined && (pending.length > 0 || followLast)) {
        if (++links > 255) {
          throw new LadingError(ERROR_CODES.IMAGE, `too many levels of symbolic links resolving /${p} in the image`);
        }
        if (node.linkname.startsWith('/')) out.length = 0;
        pending.unshift(...node.linkname.split('/').filter(Boolean));
        continue;
      }
      out.push(part);
    }
    return out.join('/');
  }

  isDirectory(p: string): boolean {
    return this.nodes.get(this.resolve(p))?.type === 'directory';
  }

  size(): number {
    return this.nodes.size;
  }

  paths(): IterableIterator<string> {
    return this.nodes.keys();
  }

  /** Names directly inside `dir` ('' for the root), sorted. */
  children(dir: string): string[] {
    const prefix = dir === '' ? '' : `${dir}/`;
    const out: string[] = [];
    for (const key of this.nodes.keys()) {
      if (key.startsWith(prefix) && key.length > prefix.length && !key.includes('/', prefix.length)) out.push(key.slice(prefix.length));
    }
    return out.sort();
  }

  /** Every path below `dir` (not `dir` itself), sorted. */
  descendants(dir: string): string[] {
    const prefix = dir === '' ? '' : `${dir}/`;
    const out: string[] = [];
    for (const key of this.nodes.keys()) if (key.startsWith(prefix) && key !== dir) out.push(key);
    return out.sort();
  }
}

/** Sort a tar entry into the index's buckets: a plain entry, a whiteout, or an opaque marker. */
export function classifyEntry(layer: IndexedLayer, p: string, node: FsNode): void {
  const clean = cleanImagePath(p);
  const slash = clean.lastIndexOf('/');
  const base = clean.slice(slash + 1);
  const parent = slash < 0 ? '' : clean.slice(0, slash);
  if (base === OPAQUE_MARKER) layer.opaqueDirs.push(parent);
  else if (base.startsWith(WHITEOUT_PREFIX)) {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target !== '' && target !== '.' && target !== '..') layer.whiteouts.push(parent === '' ? target : `${parent}/${target}`);
  } else if (clean !== '') layer.entries.push([clean, node]);
}

export function emptyIndexedLayer(): IndexedLayer {
  return { entries: [], whiteouts: [], opaqueDirs: [], files: {} };
}
