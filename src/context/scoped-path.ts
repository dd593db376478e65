/**
 * Resolving paths inside a root folder the way a container sees it: `..` never climbs above the
 * root and absolute symlink targets start at the root. This is what keeps a hostile context (a
 * symlink to /etc) from making COPY read the host.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, LadingError } from '../errors.ts';

const MAX_SYMLINKS = 255;

/**
 * Resolve `rel` (slash-separated, relative to `root`) following symlinks, all inside `root`.
 * `followLast` decides whether a symlink in the final component is followed. Returns the
 * resolved path relative to root ('' for the root itself). Missing components are kept as written.
 */
export async function resolveInRoot(root: string, rel: string, followLast = true): Promise<string> {
  const pending = rel.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const isLast = pending.length === 0;
    if (isLast && !followLast) {
      resolved.push(part);
      break;
    }
    let target: string | undefined;
    try {
      const st = await fs.lstat(path.join(root, ...candidate));
      if (st.isSymbolicLink()) target = await fs.readlink(path.join(root, ...candidate));
    } catch {
      // Missing: the rest of the path cannot contain links either.
      resolved.push(part, ...pending.filter((p) => p !== '.'));
      return cleanParts(resolved);
    }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new LadingError(ERROR_CODES.CONTEXT, `too many levels of symbolic links resolving ${rel}`, {
        hint: 'a symlink in the build context points back at itself',
      });
    }
    const targetParts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...targetParts);
  }
  return resolved.join('/');
}

function cleanParts(parts: string[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else if (p !== '.' && p !== '') out.push(p);
  }
  return out.join('/');
}

/** Whether a lexically cleaned relative path stays inside its root. */
export function staysInside(rel: string): boolean {
  const normalized = path.posix.normalize(rel);
  return !(normalized === '..' || normalized.startsWith('../') || path.posix.isAbsolute(normalized));
}
