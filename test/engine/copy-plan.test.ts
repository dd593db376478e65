/**
 * planCopy() against the table in copy-plan-cases.ts, with a hand-built FsIndex standing in for
 * the image and CopyMatch lists standing in for what the context matched. No files are read.
 */
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { joinClean, parseChmod, planCopy, type CopyMatch, type CopySourceFile } from '../../src/engine/copy-plan.ts';
import { LadingError } from '../../src/errors.ts';
import { FsIndex, type FsNode } from '../../src/layer/fs-index.ts';
import { planCases, type PlanCase, type SourceSpec } from './copy-plan-cases.ts';

const location = { file: 'Dockerfile', line: 7, column: 1, text: 'COPY ...' };

function owner(s: string | undefined): { uid: number; gid: number } {
  const [uid, gid] = (s ?? '0:0').split(':').map(Number);
  return { uid: uid!, gid: gid! };
}

/** `d PATH [MODE [UID:GID]]`, `f PATH ...`, `l PATH -> TARGET`. */
function imageOf(lines: string[]): FsIndex {
  const entries: [string, FsNode][] = lines.map((line) => {
    const [kind, p, ...rest] = line.split(' ');
    if (kind === 'l') return [p!, { type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: rest[1]! }];
    const type = kind === 'd' ? 'directory' : 'file';
    const mode = rest[0] ? Number.parseInt(rest[0], 8) : kind === 'd' ? 0o755 : 0o644;
    return [p!, { type, mode, ...owner(rest[1]), size: 0, mtime: 0 }];
  });
  const fs = new FsIndex();
  fs.apply({ entries, whiteouts: [], opaqueDirs: [], files: {} });
  return fs;
}

function matchOf(spec: SourceSpec): CopyMatch {
  const type = spec.type ?? 'file';
  const root: CopySourceFile = {
    rel: spec.path,
    type,
    mode: spec.mode ?? (type === 'directory' ? 0o755 : 0o644),
    uid: spec.uid ?? 0,
    gid: spec.gid ?? 0,
    size: 1,
  };
  if (spec.linkname !== undefined) root.linkname = spec.linkname;
  const entries = (spec.entries ?? []).map((e): CopySourceFile => {
    const link = / -> /.exec(e);
    if (link) {
      const [name, target] = e.split(' -> ');
      return { rel: `${spec.path}/${name}`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: target! };
    }
    const [name, mode] = e.split(' ');
    const dir = name!.endsWith('/');
    const rel = `${spec.path}/${dir ? name!.slice(0, -1) : name}`;
    return { rel, type: dir ? 'directory' : 'file', mode: mode ? Number.parseInt(mode, 8) : dir ? 0o755 : 0o644, uid: 0, gid: 0, size: 1 };
  });
  const match: CopyMatch = { path: spec.path, root, entries: type === 'directory' ? entries : [root] };
  if (spec.source !== undefined) match.source = spec.source;
  return match;
}

function describe(c: PlanCase): string[] {
  const plan = planCopy(c.sources.map(matchOf), {
    dest: c.dest,
    destIsDir: c.destIsDir,
    parents: c.parents ?? false,
    ...(c.link || !c.fs ? {} : { fs: imageOf(c.fs) }),
    ...(c.owner ? { owner: c.owner } : {}),
    ...(c.chmod !== undefined ? { chmod: c.chmod } : {}),
    location,
  });
  const letter = { file: 'f', directory: 'd', symlink: 'l' } as Record<string, string>;
  return plan.map((p) => `${letter[p.entry.type] ?? p.entry.type} ${p.path} ${p.entry.mode.toString(8)} ${p.entry.uid}:${p.entry.gid}`);
}

function check(t: ExecutionContext, c: PlanCase): void {
  if (c.error) {
    const err = t.throws(() => describe(c), { instanceOf: LadingError });
    t.regex(err.message, c.error);
    t.deepEqual(err.location, location, 'the error points at the instruction');
    return;
  }
  const actual = describe(c);
  const byPath = new Map(actual.map((a) => [a.split(' ')[1]!, a]));
  t.deepEqual([...byPath.keys()].sort(), c.expect!.map((e) => e.split(' ')[1]!).sort(), 'the planned paths');
  for (const e of c.expect!) {
    const want = e.split(' ');
    const got = byPath.get(want[1]!)?.split(' ') ?? [];
    t.deepEqual(got.slice(0, want.length), want, `entry ${want[1]}`);
  }
}

for (const c of planCases) test(`planCopy: ${c.name}`, (t) => check(t, c));

test('every plan case cites a rule', (t) => {
  t.true(planCases.length >= 30, `${planCases.length} cases`);
  for (const c of planCases) t.true(c.rule.length > 10, c.name);
  t.is(new Set(planCases.map((c) => c.name)).size, planCases.length);
});

test('parseChmod: octal bounds and symbolic errors carry the location', (t) => {
  t.is(parseChmod('0', location)(0o777, false), 0);
  t.is(parseChmod('04755', location)(0o644, false), 0o4755);
  for (const bad of ['8', '999', '17777', 'u+q', 'x+r', '']) {
    const err = t.throws(() => parseChmod(bad, location), { instanceOf: LadingError }, bad);
    t.deepEqual(err.location, location);
  }
  t.regex(t.throws(() => parseChmod('17777', location))!.message, /it should be octal string and between 0 and 07777/);
});

test('parseChmod: symbolic clauses apply in order, = clears the class first', (t) => {
  t.is(parseChmod('u+x,g-w', location)(0o664, false), 0o744);
  t.is(parseChmod('a=r', location)(0o777, true), 0o444);
  t.is(parseChmod('go=', location)(0o755, true), 0o700);
  t.is(parseChmod('u+s,g+s,+t', location)(0o755, true), 0o7755);
  t.is(parseChmod('o=u-w', location)(0o750, false), 0o755);
  t.is(parseChmod('a+X', location)(0o644, false), 0o644, 'X adds nothing to a file without execute bits');
  t.is(parseChmod('a+X', location)(0o600, true), 0o711, 'X adds execute to a directory');
});

test('joinClean answers as path.join does, for clean and unclean parts alike', (t) => {
  const parts = ['', '.', '..', 'a', 'b.c', '.hidden', '..x', 'x..', '...', '/', '//', 'a/', '/a', 'a/b', 'a//b', 'a/./b', 'a/../b', './a', '../a', 'a/..', 'a/.'];
  for (const a of parts) {
    for (const c of parts) {
      const folder = a + (c ? `/${c}` : '');
      for (const b of parts) t.is(joinClean(folder, b), path.join('/', folder, b).slice(1), JSON.stringify([folder, b]));
    }
  }
});
