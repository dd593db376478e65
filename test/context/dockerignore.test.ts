import test from 'ava';
import fc from 'fast-check';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LadingError } from '../../src/errors.ts';
import { IgnoreMatcher, cleanPath, parseDockerignore, readDockerignore } from '../../src/context/dockerignore.ts';

function matcher(text: string): IgnoreMatcher {
  return new IgnoreMatcher(parseDockerignore(text, '.dockerignore'));
}

// --- which ignore file a build uses --------------------------------------------------------------

async function withTree(files: Record<string, string>, fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'lading-dockerignore-'));
  try {
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
      await writeFile(path.join(root, rel), content);
    }
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const patternsOf = (ps: { pattern: string; exclusion: boolean }[]) => ps.map((p) => (p.exclusion ? '!' : '') + p.pattern);

test('the context .dockerignore is used when the Dockerfile has no ignore file of its own', async (t) => {
  await withTree({ 'ctx/.dockerignore': 'from-context\n', 'ctx/Dockerfile': 'FROM scratch\n' }, async (root) => {
    t.deepEqual(patternsOf(await readDockerignore(path.join(root, 'ctx'))), ['from-context']);
    t.deepEqual(patternsOf(await readDockerignore(path.join(root, 'ctx'), path.join(root, 'ctx/Dockerfile'))), ['from-context']);
  });
});

test('<Dockerfile>.dockerignore beside the Dockerfile wins, and is not merged with the context one', async (t) => {
  await withTree(
    {
      'ctx/.dockerignore': 'from-context\n',
      'ctx/Dockerfile.dockerignore': 'for-default-dockerfile\n',
      'build/app.Dockerfile': 'FROM scratch\n',
      'build/app.Dockerfile.dockerignore': '# specific\nfor-app\n!keep\n',
    },
    async (root) => {
      const ctx = path.join(root, 'ctx');
      t.deepEqual(patternsOf(await readDockerignore(ctx)), ['for-default-dockerfile']);
      t.deepEqual(patternsOf(await readDockerignore(ctx, path.join(root, 'build/app.Dockerfile'))), ['for-app', '!keep']);
      // A Dockerfile without its own ignore file falls back to the context's.
      t.deepEqual(patternsOf(await readDockerignore(ctx, path.join(root, 'build/other.Dockerfile'))), ['from-context']);
    },
  );
});

test('a relative Dockerfile path is resolved against the current directory, like -f', async (t) => {
  await withTree({ 'ctx/.dockerignore': 'a\n', 'df/Dockerfile': '', 'df/Dockerfile.dockerignore': 'b\n' }, async (root) => {
    const rel = path.relative(process.cwd(), path.join(root, 'df/Dockerfile'));
    t.deepEqual(patternsOf(await readDockerignore(path.join(root, 'ctx'), rel)), ['b']);
  });
});

test('no ignore file at all means no patterns', async (t) => {
  await withTree({ 'ctx/Dockerfile': '' }, async (root) => {
    t.deepEqual(await readDockerignore(path.join(root, 'ctx')), []);
  });
});

test('errors in the ignore file name the file that was read and its line', async (t) => {
  await withTree({ 'ctx/Dockerfile': '', 'ctx/Dockerfile.dockerignore': 'ok\n\n# c\nbad[\n' }, async (root) => {
    const err = await t.throwsAsync(readDockerignore(path.join(root, 'ctx')));
    t.true(err instanceof LadingError);
    const e = err as LadingError;
    t.is(e.code, 'DOCKERIGNORE');
    t.is(e.location?.line, 4);
    t.true(e.location!.file.endsWith(path.join('ctx', 'Dockerfile.dockerignore')), e.location!.file);
  });
});

// --- parsing ----------------------------------------------------------------------------------------

test('parse: CRLF line ends, BOM, comments only in column 1, trimming, cleaning, line numbers', (t) => {
  const parsed = parseDockerignore('\ufeff# comment\r\n  # not a comment\r\n./a/b/../c/\r\n\r\n!  /keep//me \r\n', '.dockerignore');
  t.deepEqual(parsed, [
    { pattern: '# not a comment', exclusion: false, line: 2 },
    { pattern: 'a/c', exclusion: false, line: 3 },
    { pattern: 'keep/me', exclusion: true, line: 5 },
  ]);
});

const badPatterns: [string, RegExp][] = [
  ['!', /illegal exclusion pattern/],
  ['!/', /illegal exclusion pattern/], // cleans to "!"
  ['[', /unterminated character class/],
  ['a[b', /unterminated character class/],
  ['[]a]', /unexpected '\]'/],
  ['[x-]', /unexpected '\]'/],
  ['foo\\', /trailing backslash/],
  ['[z-a]', /invalid character class range/], // valid for filepath.Match, refused by Go's regexp
  ['*\\q', /invalid escape/],
];

for (const [pattern, message] of badPatterns) {
  test(`malformed pattern ${JSON.stringify(pattern)} is a DOCKERIGNORE error with file:line and a hint`, (t) => {
    const err = t.throws(() => parseDockerignore(`ok\n${pattern}\n`, 'sub/.dockerignore'));
    t.true(err instanceof LadingError);
    const e = err as LadingError;
    t.is(e.code, 'DOCKERIGNORE');
    t.regex(e.message, message);
    t.is(e.location?.file, 'sub/.dockerignore');
    t.is(e.location?.line, 2);
    t.truthy(e.hint);
    t.true(e.describe().startsWith('sub/.dockerignore:2: '), e.describe());
  });
}

test('a matcher built from hand-made patterns validates and cleans them too', (t) => {
  const m = new IgnoreMatcher([{ pattern: 'docs/', exclusion: false, line: 1 }]);
  t.true(m.excludes('docs/x'));
  const err = t.throws(() => new IgnoreMatcher([{ pattern: '[', exclusion: true, line: 3 }], '--exclude'));
  t.deepEqual((err as LadingError).location, { file: '--exclude', line: 3, text: '![' });
});

// --- matching -----------------------------------------------------------------------------------

test('the last matching line decides (the Docker documentation examples)', (t) => {
  const a = matcher('*.md\n!README*.md\nREADME-secret.md\n');
  t.true(a.excludes('CHANGES.md'));
  t.false(a.excludes('README.md'));
  t.true(a.excludes('README-secret.md'));
  const b = matcher('*.md\nREADME-secret.md\n!README*.md\n');
  t.false(b.excludes('README-secret.md'));
  const c = matcher('*/temp*\n*/*/temp*\ntemp?\n');
  t.true(c.excludes('somedir/temporary.txt'));
  t.true(c.excludes('somedir/subdir/temporary.txt'));
  t.true(c.excludes('tempa'));
  t.false(c.excludes('temporary.txt'));
  t.false(c.excludes('a/b/c/temp'));
});

test('excluding a directory excludes what is inside it, unless a later line re-includes it', (t) => {
  const m = matcher('node_modules\nbuild/*\n!build/keep\n');
  t.true(m.excludes('node_modules'));
  t.true(m.excludes('node_modules/x/y.js'));
  t.false(m.excludes('src/node_modules'));
  t.true(m.excludes('build/out.o'));
  t.false(m.excludes('build/keep'));
  t.false(m.excludes('build/keep/deep/file'));
  t.false(m.excludes('build'));
});

test('the context root is never excluded', (t) => {
  const m = matcher('*\n**\n.\n');
  t.false(m.excludes(''));
  t.false(m.excludes('.'));
  t.false(m.canSkipDir(''));
  t.false(m.canSkipDir('.'));
});

test('patterns climbing out with ../ cannot match anything outside (or inside) the context', (t) => {
  t.deepEqual(
    parseDockerignore('../secret\n/../rooted\na/../../b\n!../x\n', '.dockerignore').map((p) => p.pattern),
    ['../secret', 'rooted', '../b', '../x'],
  );
  const m = matcher('../secret\na/../../b\n');
  for (const p of ['secret', 'b', 'a/b', 'x/secret', 'a', '..']) t.false(m.excludes(p), p);
  // "/.." cannot climb above the root, so "/../rooted" is just "rooted".
  t.true(matcher('/../rooted\n').excludes('rooted'));
  // An exception that climbs out re-includes nothing.
  const n = matcher('*\n!../keep\n');
  t.true(n.excludes('keep'));
  t.true(n.canSkipDir('keep'));
});

test('excludes gives the same answers in any order of questions (parent cache)', (t) => {
  const text = 'a\n!a/b\na/b/c*\n**/z\n';
  const paths = ['a/b/c1', 'a', 'a/b', 'a/b/d', 'q/z', 'q/z/w', 'a/x', 'q', 'z'];
  const fresh = paths.map((p) => matcher(text).excludes(p));
  const shared = matcher(text);
  t.deepEqual([...paths].reverse().map((p) => shared.excludes(p)).reverse(), fresh);
  t.deepEqual(fresh, [true, true, false, false, true, true, true, false, true]);
});

test('hasExceptions tells whether any ! pattern exists', (t) => {
  t.false(matcher('a\nb\n').hasExceptions);
  t.true(matcher('a\n!a/b\n').hasExceptions);
});

// --- canSkipDir ---------------------------------------------------------------------------------

test('canSkipDir: excluded directories without reachable exceptions can be skipped', (t) => {
  const plain = matcher('node_modules\n.git\n');
  t.true(plain.canSkipDir('node_modules'));
  t.true(plain.canSkipDir('node_modules/a/b'));
  t.false(plain.canSkipDir('src'));

  const withException = matcher('node_modules\n!node_modules/keep\n');
  t.false(withException.canSkipDir('node_modules'));
  t.true(withException.canSkipDir('node_modules/other'));
  t.false(withException.canSkipDir('node_modules/keep'), 'not excluded at all');

  // An exception that comes before the exclusion cannot re-include anything below it.
  t.true(matcher('!node_modules/keep\nnode_modules\n').canSkipDir('node_modules'));

  // Wildcard exceptions: skip only where their fixed leading segments rule the directory out.
  const glob = matcher('**\n!src/*.ts\n!docs/**/keep\n');
  t.true(glob.canSkipDir('assets'));
  t.false(glob.canSkipDir('src'));
  t.true(glob.canSkipDir('src/sub'), 'src/*.ts reaches only one level below src');
  t.false(glob.canSkipDir('docs'));
  t.false(glob.canSkipDir('docs/a/b'));

  // An exception starting with ** may match anywhere.
  t.false(matcher('*\n!**/keep\n').canSkipDir('anything'));
});

/** A context as a set of paths; every prefix of a path is a directory. */
function treeOf(files: string[]): { nodes: string[]; dirs: Set<string>; children: Map<string, string[]> } {
  const all = new Set<string>();
  const dirs = new Set<string>();
  for (const f of files) {
    const segs = f.split('/');
    for (let i = 1; i <= segs.length; i++) {
      all.add(segs.slice(0, i).join('/'));
      if (i < segs.length) dirs.add(segs.slice(0, i).join('/'));
    }
  }
  const children = new Map<string, string[]>();
  for (const n of all) {
    const slash = n.lastIndexOf('/');
    const parent = slash < 0 ? '' : n.slice(0, slash);
    const list = children.get(parent) ?? [];
    list.push(n);
    children.set(parent, list);
  }
  return { nodes: [...all].sort(), dirs, children };
}

const NAMES = ['a', 'b', 'ab', 'ba', '.x', 'a.md', 'keep'];
const SEGMENTS = [...NAMES, '*', '?', '**', 'a*', '*b', '?b', '[ab]', '[^a]*', '*.md', 'k*p', '\\a'];

const treeArb = fc.array(fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 4 }).map((s) => s.join('/')), { minLength: 1, maxLength: 25 });
const patternArb = fc
  .tuple(fc.boolean(), fc.constantFrom('', '/', './'), fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }), fc.constantFrom('', '/'))
  .map(([not, lead, segs, trail]) => `${not ? '!' : ''}${lead}${segs.join('/')}${trail}`);

let skippedSomewhere = 0;

test('canSkipDir property: a walk that prunes with it keeps exactly the paths a full check keeps', (t) => {
  fc.assert(
    fc.property(treeArb, fc.array(patternArb, { minLength: 1, maxLength: 6 }), (files, patterns) => {
      const m = matcher(patterns.join('\n'));
      const { nodes, dirs, children } = treeOf(files);
      const full = nodes.filter((n) => !m.excludes(n));

      const walked: string[] = [];
      const visit = (dir: string): void => {
        for (const n of children.get(dir) ?? []) {
          const excluded = m.excludes(n);
          if (dirs.has(n) && excluded && m.canSkipDir(n)) {
            skippedSomewhere++;
            // Soundness, stated directly: nothing below a skipped directory is kept.
            for (const below of nodes) if (below.startsWith(n + '/') && !m.excludes(below)) throw new Error(`${below} is kept below skipped ${n}`);
            continue;
          }
          if (!excluded) walked.push(n);
          if (dirs.has(n)) visit(n);
        }
      };
      visit('');
      return JSON.stringify(walked.sort()) === JSON.stringify(full);
    }),
    { numRuns: 1500 },
  );
  t.true(skippedSomewhere > 100, `pruning happened ${skippedSomewhere} times`);
});

test('cleanPath behaves like Go path.Clean', (t) => {
  const cases: [string, string][] = [
    ['', '.'], ['.', '.'], ['/', '/'], ['a/', 'a'], ['./a', 'a'], ['a//b', 'a/b'], ['a/./b', 'a/b'],
    ['a/../b', 'b'], ['a/..', '.'], ['../a', '../a'], ['../../a/../b', '../../b'], ['/..', '/'], ['/../a', '/a'], ['!./a', '!./a'],
  ];
  for (const [input, expected] of cases) t.is(cleanPath(input), expected, input);
});
