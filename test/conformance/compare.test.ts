/**
 * The comparison's own rules, on made-up images: what counts as a difference, how empty config
 * values compare, how listed differences are matched (globs, aspects, expected values) and when a
 * listed one is stale.
 */
import test from 'ava';
import type { KnownDifference } from '../../scripts/conformance/cases.ts';
import { applyKnown, compareImages, globToRegExp, normalizeField, subsetMatch, type Side } from '../../scripts/conformance/compare.ts';
import type { FsEntry } from '../../scripts/conformance/image.ts';

const dir = (uid = 0, gid = 0, mode = '0755'): FsEntry => ({ type: 'dir', mode, uid, gid });
const file = (content: string, mode = '0644'): FsEntry => ({ type: 'file', mode, uid: 0, gid: 0, size: content.length, digest: `d-${content}`, preview: content });

function side(files: Record<string, FsEntry>, config: Record<string, unknown> = {}, layerEntries: number[] = [3]): Side {
  return {
    config,
    image: { files: new Map(Object.entries(files)), layers: layerEntries.map((entries) => ({ entries, sample: [] })) },
  };
}

test('identical images have no difference', (t) => {
  const a = side({ '/': dir(), '/a': file('x') }, { Env: ['A=1'] });
  t.deepEqual(compareImages(a, side({ '/': dir(), '/a': file('x') }, { Env: ['A=1'] })), []);
});

test('each property of an entry is its own difference; a type change hides the rest', (t) => {
  const b = side({ '/': dir(), '/a': file('x'), '/d': dir(), '/only-b': file('') });
  const l = side({ '/': dir(), '/a': { ...file('yy', '0755'), uid: 7 }, '/d': file('d'), '/only-l': dir() });
  const got = compareImages(b, l).map((d) => (d.what === 'fs' ? `${d.aspect} ${d.path}` : d.what));
  t.deepEqual(got, ['mode /a', 'uid /a', 'content /a', 'type /d', 'only-buildah /only-b', 'only-lading /only-l']);
});

test('empty config values compare as unset; zero health-check durations are defaults; order of Env matters', (t) => {
  t.is(normalizeField('Entrypoint', []), undefined);
  t.is(normalizeField('Volumes', {}), undefined);
  t.deepEqual(normalizeField('Healthcheck', { Test: ['CMD', 'true'], Interval: 0, Retries: 3 }), { Retries: 3, Test: ['CMD', 'true'] });
  const diffs = compareImages(side({}, { Env: ['A=1', 'B=2'], Volumes: {} }), side({}, { Env: ['B=2', 'A=1'] }));
  t.deepEqual(diffs.map((d) => (d.what === 'config' ? d.field : d.what)), ['Env']);
});

test('layers count only when they hold entries', (t) => {
  t.deepEqual(compareImages(side({}, {}, [5, 0, 2]), side({}, {}, [5, 2])), []);
  const [d] = compareImages(side({}, {}, [5, 2]), side({}, {}, [5, 1, 2]));
  t.like(d, { what: 'layers', buildah: 2, lading: 3 });
});

test('globs: * stays within a name, ** crosses folders', (t) => {
  t.true(globToRegExp('/srv/*').test('/srv/a'));
  t.false(globToRegExp('/srv/*').test('/srv/a/b'));
  t.true(globToRegExp('/srv/owned**').test('/srv/owned'));
  t.true(globToRegExp('/srv/owned**').test('/srv/owned/css/site.css'));
  t.false(globToRegExp('/a.b').test('/axb'));
});

test('expected values match exactly, objects as subsets', (t) => {
  t.true(subsetMatch({ type: 'dir', uid: 0 }, dir(0, 5)));
  t.false(subsetMatch({ type: 'dir', uid: 1 }, dir(0, 5)));
  t.false(subsetMatch(['a'], ['a', 'b']));
  t.true(subsetMatch(1000, 1000));
});

test('a listed difference marks the one it describes; one that does not occur is stale', (t) => {
  const diffs = compareImages(side({ '/': dir(), '/x': dir(0, 0) }, {}, [1, 1]), side({ '/': dir(), '/x': dir(1000, 1000) }, {}, [1, 1, 1]));
  const known: KnownDifference[] = [
    { what: 'fs', path: '/x', aspect: 'uid', buildah: 0, lading: 1000, reason: 'uid as BuildKit gives it' },
    { what: 'fs', path: '/x', aspect: 'gid', lading: 2000, reason: 'a wrong expectation stays unlisted' },
    { what: 'config', field: 'Cmd', reason: 'never happens, so it is stale' },
  ];
  const global: KnownDifference[] = [{ what: 'layers', reason: 'matches any layer count difference' }];
  const stale = applyKnown(diffs, known, global);
  t.deepEqual(diffs.map((d) => [d.what === 'fs' ? `${d.aspect} ${d.path}` : d.what, d.known?.reason]), [
    ['uid /x', 'uid as BuildKit gives it'],
    ['gid /x', undefined],
    ['layers', 'matches any layer count difference'],
  ]);
  t.deepEqual(stale.map((k) => k.reason), ['a wrong expectation stays unlisted', 'never happens, so it is stale']);
});

test('walking a tree records types, modes, owners, content, links and hard-link groups', async (t) => {
  const { mkdtemp, writeFile, symlink, link, mkdir, chmod, rm } = await import('node:fs/promises');
  const { execFileSync } = await import('node:child_process');
  const os = await import('node:os');
  const path = await import('node:path');
  const { walkTree } = await import('../../scripts/conformance/image.ts');
  const root = await mkdtemp(path.join(os.tmpdir(), 'lading-conformance-walk-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'd'));
  await chmod(path.join(root, 'd'), 0o2750);
  await writeFile(path.join(root, 'd', 'b'), 'hello');
  await link(path.join(root, 'd', 'b'), path.join(root, 'a-link'));
  await symlink('d/b', path.join(root, 's'));
  execFileSync('mkfifo', [path.join(root, 'p')]);
  const tree = await walkTree(root);
  t.deepEqual([...tree.keys()], ['/', '/a-link', '/d', '/d/b', '/p', '/s']);
  t.like(tree.get('/d'), { type: 'dir', mode: '2750' });
  t.like(tree.get('/d/b'), { type: 'file', size: 5, preview: 'hello', hardlink: '/a-link' });
  t.like(tree.get('/a-link'), { hardlink: '/a-link', digest: tree.get('/d/b')!.digest });
  t.like(tree.get('/s'), { type: 'symlink', link: 'd/b' });
  t.like(tree.get('/p'), { type: 'fifo' });
});
