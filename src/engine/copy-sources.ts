/**
 * Where COPY and ADD read from, turned into CopyMatch lists: the build context (with
 * .dockerignore), heredoc bodies, and the file systems of other stages and images.
 */
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type { BuildContext, ContextEntry } from '../context/context.ts';
import { sha256 } from '../image/digest.ts';
import type { CopyMatch, CopySourceFile } from './copy-plan.ts';

/**
 * One pass over cold files: instead of hashing the context for the key and reading it again for
 * the layer, the layer writer hashes as it reads, and the key is computed afterwards from what it
 * read. `read` collects those digests (by absolute path).
 */
export interface SinglePass {
  read: Map<string, string>;
}

function fromContextEntry(context: BuildContext, e: ContextEntry, pass?: SinglePass): CopySourceFile {
  // Files from the context always land owned by root (unless --chown): the host's ids never leak in.
  const file: CopySourceFile = { rel: e.rel, type: e.type, mode: e.mode, uid: 0, gid: 0, size: e.size };
  if (e.type === 'file') {
    let digest: Promise<string> | undefined;
    const digestOf = (): Promise<string> => {
      const read = pass?.read.get(e.abs);
      return read !== undefined ? Promise.resolve(read) : (digest ??= context.digest(e));
    };
    file.digest = digestOf;
    // A digest the stat cache knows for this signature stays right: look it up once, and again
    // only while it is unknown (warm rebuilds ask three times per file).
    let known = context.knownDigest(e);
    file.knownDigest = () => pass?.read.get(e.abs) ?? (known ??= context.knownDigest(e));
    if (pass && known === undefined) {
      file.source = {
        kind: 'path',
        path: e.abs,
        onDigest: (d, after) => {
          // The two-pass path refuses a file whose bytes differ from the ones it hashed; here the
          // same promise is kept by refusing a file whose signature moved while it was read (its
          // bytes could be half old, half new: a layer of a file that never existed).
          if (!context.rememberDigest(e, d, after)) {
            throw new LadingError(ERROR_CODES.CONTEXT, `${e.abs} changed during the build`, {
              hint: 'do not modify the build context while a build runs; nothing was cached',
            });
          }
          pass.read.set(e.abs, d);
        },
      };
    } else {
      // The bytes written must be the bytes the key was computed from: the writer hashes what it
      // reads and compares (a stat signature alone misses a rewrite within one timestamp tick).
      file.source = { kind: 'path', path: e.abs, digest: digestOf };
    }
  }
  if (e.linkname !== undefined) file.linkname = e.linkname;
  if (e.linkKey !== undefined) file.linkKey = e.linkKey;
  return file;
}

/** Resolve every source in the context; a source that matches nothing is an error naming it. */
export async function contextMatches(
  context: BuildContext,
  sources: string[],
  excludes: string[],
  location: SourceLocation,
  instruction: string,
  pass?: SinglePass,
): Promise<CopyMatch[]> {
  const out: CopyMatch[] = [];
  for (const source of sources) {
    const matches = await context.match(source, excludes);
    if (matches.length === 0) {
      const cleaned = source.replace(/^\/+/, '');
      const ignored = context.isIgnored(cleaned);
      throw new LadingError(ERROR_CODES.CONTEXT, `${instruction} source "${source}" matches nothing in the build context`, {
        location,
        hint: ignored
          ? `"${source}" is excluded by .dockerignore; remove the pattern that excludes it`
          : `check the path: sources are relative to the context folder ${context.root}, and cannot leave it`,
      });
    }
    for (const m of matches) {
      out.push({ path: m.path, source, root: fromContextEntry(context, m.root, pass), entries: m.entries.map((e) => fromContextEntry(context, e, pass)) });
    }
  }
  return out;
}

/** `COPY <<EOF /dest`: each heredoc is a file named after its delimiter, mode 0644. */
export function heredocMatches(inline: { name: string; content: string }[], sources: string[]): CopyMatch[] {
  const out: CopyMatch[] = [];
  for (const source of sources) {
    const name = /^<<-?\s*["']?([^"']+)["']?$/.exec(source)?.[1];
    const doc = inline.find((d) => d.name === name);
    if (!doc) continue;
    const data = Buffer.from(doc.content, 'utf8');
    const digest = sha256(data);
    const file: CopySourceFile = {
      rel: doc.name,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: data.length,
      source: { kind: 'bytes', data },
      digest: async () => digest,
    };
    out.push({ path: doc.name, root: file, entries: [file] });
  }
  return out;
}

export function isHeredocSource(source: string, inline: { name: string }[]): boolean {
  const name = /^<<-?\s*["']?([^"']+)["']?$/.exec(source)?.[1];
  return name !== undefined && inline.some((d) => d.name === name);
}

/** Whether most of the matched context files would have to be read to know their digests. */
export function mostlyCold(matches: CopyMatch[]): boolean {
  let files = 0;
  for (const m of matches) for (const f of m.root.type === 'directory' ? m.entries : [m.root]) if (f.type === 'file') files++;
  // Stop as soon as the answer is settled: a warm rebuild looks up half its files, not all.
  let known = 0;
  let unknown = 0;
  for (const m of matches) {
    for (const f of m.root.type === 'directory' ? m.entries : [m.root]) {
      if (f.type !== 'file') continue;
      if (f.knownDigest?.() === undefined) unknown++;
      else known++;
      if (unknown * 2 > files) return true;
      if (known * 2 >= files) return false;
    }
  }
  return false;
}
