/**
 * The few files of an image the scanners care about, as the image's layers leave them: each
 * layer's records replace lower ones at the same path, whiteouts and opaque directories delete
 * lower records, and a non-directory entry deletes what a lower layer had below a directory of the
 * same name. Only records are kept, never the rest of the file system.
 */
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../../layer/entry.ts';

export interface FileRecord<T> {
  /** Index of the layer that last wrote the file. */
  layer: number;
  data: T;
}

/** What one layer does to the recorded files, gathered while its tar streams by. */
export class LayerChanges<T> {
  readonly records = new Map<string, T>();
  readonly opaque: string[] = [];
  readonly whiteouts: string[] = [];
  /** Paths this layer writes as something we do not record (a plain file, a directory, ...). */
  readonly replaced = new Map<string, 'directory' | 'other'>();
}

/** Note a whiteout or opaque marker in `changes`; true when `path` is an ordinary entry instead. */
export function classifyPath(changes: LayerChanges<unknown>, path: string): boolean {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  const parent = slash < 0 ? '' : path.slice(0, slash);
  if (base === OPAQUE_MARKER) {
    changes.opaque.push(parent);
    return false;
  }
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const target = base.slice(WHITEOUT_PREFIX.length);
    if (target !== '' && target !== '.' && target !== '..') changes.whiteouts.push(parent === '' ? target : `${parent}/${target}`);
    return false;
  }
  return true;
}

export class LayeredFiles<T> {
  private readonly records = new Map<string, FileRecord<T>>();
  /** How many records lie below each directory, so deletions below a path are found without a scan. */
  private readonly below = new Map<string, number>();

  get(path: string): FileRecord<T> | undefined {
    return this.records.get(path);
  }

  entries(): IterableIterator<[string, FileRecord<T>]> {
    return this.records.entries();
  }

  /** Whether anything is recorded at `path` or below it. */
  touches(path: string): boolean {
    return this.records.has(path) || (this.below.get(path) ?? 0) > 0;
  }

  /**
   * Apply one layer. `inherit` sees each new record with the record it overwrites at the same
   * path (if that survived the layer's whiteouts), so databases can keep per-entry layer indexes.
   */
  apply(layer: number, changes: LayerChanges<T>, inherit?: (next: T, prev: FileRecord<T>) => void): void {
    for (const dir of changes.opaque) this.deleteBelow(dir);
    for (const p of changes.whiteouts) {
      this.delete(p);
      this.deleteBelow(p);
    }
    for (const [p, data] of changes.records) {
      const prev = this.records.get(p);
      if (prev && inherit) inherit(data, prev);
    }
    for (const [p, kind] of changes.replaced) {
      this.delete(p);
      if (kind === 'other') this.deleteBelow(p);
    }
    for (const [p, data] of changes.records) {
      this.delete(p);
      this.deleteBelow(p);
      this.set(p, { layer, data });
    }
  }

  private set(path: string, record: FileRecord<T>): void {
    this.records.set(path, record);
    for (const dir of ancestors(path)) this.below.set(dir, (this.below.get(dir) ?? 0) + 1);
  }

  private delete(path: string): void {
    if (!this.records.delete(path)) return;
    for (const dir of ancestors(path)) {
      const n = (this.below.get(dir) ?? 1) - 1;
      if (n === 0) this.below.delete(dir);
      else this.below.set(dir, n);
    }
  }

  private deleteBelow(dir: string): void {
    if (dir !== '' && !this.below.has(dir)) return;
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const p of [...this.records.keys()]) if (p.startsWith(prefix) && p !== dir) this.delete(p);
  }
}

/** '' and every proper ancestor directory of `path`: a/b/c → '', a, a/b. */
function ancestors(path: string): string[] {
  const out = [''];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
