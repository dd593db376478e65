/**
 * Paths inside a root filesystem, resolved as the sandboxed program would see them: symlinks are
 * followed, but `/` and `..` stop at the root. Whatever a layer or an image contains, a path
 * resolved here names something inside the root (containerd's RootPath, in the same spirit).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';

const MAX_SYMLINKS = 40;

export class RootResolver {
  readonly root: string;
  /** Relative paths known to be real directories, so deep trees are not lstat'ed again and again. */
  private readonly realDirs = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  abs(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** Forget what is cached about `rel` and everything below it (after it was removed or replaced). */
  forget(rel: string): void {
    if (!this.realDirs.delete(rel) && rel !== '') return;
    const prefix = rel === '' ? '' : `${rel}/`;
    for (const known of this.realDirs) if (known.startsWith(prefix)) this.realDirs.delete(known);
  }

  /**
   * Resolve `rel` (a cleaned relative path) inside the root. Symlinks in every component but the
   * last are followed; the last one too when `followLast`. Missing components end the resolution:
   * the rest is taken literally. Returns the resolved relative path ('' for the root).
   */
  resolve(rel: string, followLast: boolean): string {
    let done: string[] = [];
    const todo = rel.split('/').filter(meaningful).reverse();
    let hops = 0;
    let literal = false;
    while (todo.length > 0) {
      const part = todo.pop()!;
      if (part === '..') {
        done.pop();
        continue;
      }
      const candidate = done.length === 0 ? part : `${done.join('/')}/${part}`;
      if (literal || (todo.length === 0 && !followLast) || this.realDirs.has(candidate)) {
        done.push(part);
        continue;
      }
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(this.root, candidate));
      } catch {
        literal = true;
        done.push(part);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINKS) {
          throw new LadingError(ERROR_CODES.TAR, `too many levels of symbolic links resolving /${rel}`);
        }
        const target = fs.readlinkSync(path.join(this.root, candidate));
        if (target.startsWith('/')) done = [];
        todo.push(...target.split('/').filter(meaningful).reverse());
        continue;
      }
      if (st.isDirectory()) this.realDirs.add(candidate);
      else if (todo.length > 0) literal = true; // a file in the middle: ENOTDIR later
      done.push(part);
    }
    return done.join('/');
  }

  /** Resolve `rel` following every symlink and create the missing directories (0755). */
  ensureDir(rel: string, onCreate?: (created: string) => void): string {
    const resolved = this.resolve(rel, true);
    if (resolved === '') return resolved;
    const parts = resolved.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.realDirs.has(prefix)) continue;
      const full = path.join(this.root, prefix);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(full);
      } catch {
        st = undefined;
      }
      if (st === undefined) {
        fs.mkdirSync(full, { mode: 0o755 });
        fs.chmodSync(full, 0o755);
        onCreate?.(prefix);
      } else if (!st.isDirectory()) {
        throw new LadingError(ERROR_CODES.TAR, `/${prefix} is not a directory, so /${rel} cannot be created inside it`);
      }
      this.realDirs.add(prefix);
    }
    return resolved;
  }

  /** Remember that `rel` is now a real directory (the caller just made it). */
  noteDir(rel: string): void {
    this.realDirs.add(rel);
  }
}

const meaningful = (part: string): boolean => part !== '' && part !== '.';

/** `dirname` and `basename` of a cleaned relative path ('' for a top-level name's parent). */
export function splitPath(rel: string): [string, string] {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? ['', rel] : [rel.slice(0, slash), rel.slice(slash + 1)];
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
