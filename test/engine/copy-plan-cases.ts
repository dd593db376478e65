/**
 * Table of COPY destination cases for planCopy(): where each source lands, with which mode and
 * owner, and which parent folders the layer carries. Each case cites the rule it checks from the
 * Dockerfile reference (https://docs.docker.com/reference/dockerfile/, "ref §Section") or, where
 * the reference is silent, BuildKit's behaviour.
 *
 * Notation. Image entries (`fs`): `d PATH [MODE [UID:GID]]`, `f PATH ...`, `l PATH -> TARGET`.
 * Sources: what the context matched, `path` as matched, a directory lists its `entries` relative
 * to itself (`sub/` is a folder, `name -> target` a symlink, a trailing ` 755` a mode). Expected:
 * `TYPE PATH [MODE [UID:GID]]` for every entry of the planned layer (paths without leading /).
 */

export interface SourceSpec {
  path: string;
  type?: 'file' | 'directory' | 'symlink';
  mode?: number;
  uid?: number;
  gid?: number;
  /** For a directory: what is below it. */
  entries?: string[];
  /** The source as written in the Dockerfile (for --parents pivots). */
  source?: string;
  linkname?: string;
}

export interface PlanCase {
  name: string;
  rule: string;
  fs?: string[];
  sources: SourceSpec[];
  dest: string;
  destIsDir: boolean;
  parents?: boolean;
  /** --link: planned without the image's file system. */
  link?: boolean;
  owner?: { uid: number; gid: number };
  chmod?: string;
  expect?: string[];
  error?: RegExp;
}

export const planCases: PlanCase[] = [
  {
    name: 'a file into a folder destination keeps its name',
    rule: 'ref §COPY Destination: COPY test.txt /abs/ creates /abs/test.txt',
    sources: [{ path: 'test.txt' }],
    dest: '/abs',
    destIsDir: true,
    expect: ['d abs 755 0:0', 'f abs/test.txt 644 0:0'],
  },
  {
    name: 'a file to a destination without a slash becomes that file',
    rule: 'ref §COPY Destination: COPY test.txt /abs creates a file at /abs',
    sources: [{ path: 'test.txt' }],
    dest: '/abs',
    destIsDir: false,
    expect: ['f abs 644'],
  },
  {
    name: 'a file to an existing folder without a slash goes inside it',
    rule: 'BuildKit (fsutil copy): an existing directory destination receives the file under its own name',
    fs: ['d usr', 'd usr/src 755'],
    sources: [{ path: 'test.txt' }],
    dest: '/usr/src',
    destIsDir: false,
    expect: ['d usr', 'd usr/src', 'f usr/src/test.txt'],
  },
  {
    name: 'missing folders on the way are created, 0755 and owned by root',
    rule: 'ref §COPY Destination: if destination doesn\'t exist, it\'s created, along with all missing directories in its path',
    sources: [{ path: 'a.txt' }],
    dest: '/opt/app/conf',
    destIsDir: true,
    expect: ['d opt 755 0:0', 'd opt/app 755 0:0', 'd opt/app/conf 755 0:0', 'f opt/app/conf/a.txt 644 0:0'],
  },
  {
    name: 'existing parent folders keep their metadata',
    rule: 'ref §COPY (contents are merged with existing directories); the layer repeats the parents as the image has them',
    fs: ['d srv 750 10:20', 'd srv/www 775 33:33'],
    sources: [{ path: 'index.html' }],
    dest: '/srv/www',
    destIsDir: true,
    expect: ['d srv 750 10:20', 'd srv/www 775 33:33', 'f srv/www/index.html 644 0:0'],
  },
  {
    name: 'a directory source copies its contents, not itself',
    rule: 'ref §COPY Source: if the source is a directory, the contents are copied; the directory itself isn\'t',
    sources: [{ path: 'src', type: 'directory', entries: ['main.go', 'pkg/', 'pkg/util.go'] }],
    dest: '/app',
    destIsDir: true,
    expect: ['d app', 'f app/main.go', 'd app/pkg', 'f app/pkg/util.go'],
  },
  {
    name: 'a directory source to a destination without a slash is the same',
    rule: 'ref §COPY Source (a directory\'s contents go to the destination whatever its spelling)',
    sources: [{ path: 'src', type: 'directory', entries: ['a'] }],
    dest: '/app',
    destIsDir: false,
    expect: ['d app', 'f app/a'],
  },
  {
    name: 'a new destination folder is made 0755, not with the source folder\'s mode',
    rule: 'ref §COPY Source: the contents of a directory are copied, not the directory itself (BuildKit creates the missing destination 0755; buildah agrees: fixtures/conformance copy-chmod)',
    sources: [{ path: 'conf', type: 'directory', mode: 0o700, entries: ['x'] }],
    dest: '/etc/app',
    destIsDir: true,
    expect: ['d etc 755', 'd etc/app 755', 'f etc/app/x'],
  },
  {
    name: 'an existing destination folder keeps its mode and owner',
    rule: 'ref §COPY Source: contents are merged with any existing directories at the destination',
    fs: ['d app 711 1000:1000', 'f app/old.txt'],
    sources: [{ path: 'conf', type: 'directory', mode: 0o700, entries: ['new.txt'] }],
    dest: '/app',
    destIsDir: true,
    expect: ['d app 711 1000:1000', 'f app/new.txt'],
  },
  {
    name: 'subdirectories merge with existing ones, conflicts go to the copied content',
    rule: 'ref §COPY Source: subdirectories are merged; conflicts are resolved in favor of the content being added, file by file',
    fs: ['d app', 'd app/lib', 'f app/lib/a.js 600', 'f app/lib/keep.js'],
    sources: [{ path: 'build', type: 'directory', entries: ['lib/', 'lib/a.js'] }],
    dest: '/app',
    destIsDir: true,
    expect: ['d app', 'd app/lib', 'f app/lib/a.js 644'],
  },
  {
    name: 'copying a directory onto an existing file is an error',
    rule: 'ref §COPY Source: an error is raised if you\'re trying to copy a directory onto an existing file',
    fs: ['d etc', 'f etc/app'],
    sources: [{ path: 'conf', type: 'directory', entries: ['x'] }],
    dest: '/etc/app',
    destIsDir: false,
    error: /cannot copy a directory onto the file \/etc\/app/,
  },
  {
    name: 'a directory below a copied folder cannot replace an existing file either',
    rule: 'ref §COPY Source: copying a directory onto an existing file raises an error',
    fs: ['d app', 'f app/lib'],
    sources: [{ path: 'build', type: 'directory', entries: ['lib/', 'lib/a.js'] }],
    dest: '/app',
    destIsDir: true,
    error: /cannot copy a directory onto the file \/app\/lib/,
  },
  {
    name: 'a file onto an existing directory of the same name is an error',
    rule: 'ref §COPY Source: if the source is a file and a directory with the same name exists at the destination, an error is raised',
    fs: ['d data', 'd data/config.json'],
    sources: [{ path: 'config.json' }],
    dest: '/data',
    destIsDir: true,
    error: /cannot copy a file onto the directory \/data\/config.json/,
  },
  {
    name: 'several files into a folder',
    rule: 'ref §COPY Source: COPY file1.txt file2.txt /usr/src/things/',
    sources: [{ path: 'file1.txt' }, { path: 'file2.txt' }],
    dest: '/usr/src/things',
    destIsDir: true,
    expect: ['d usr', 'd usr/src', 'd usr/src/things', 'f usr/src/things/file1.txt', 'f usr/src/things/file2.txt'],
  },
  {
    name: 'several files to a destination without a slash: the last one wins',
    rule: 'ref §COPY Source requires a / for several sources; BuildKit does not enforce it and each source overwrites the last (moby/buildkit#1853, #4550)',
    sources: [{ path: 'one', mode: 0o600 }, { path: 'two', mode: 0o640 }],
    dest: '/dest',
    destIsDir: false,
    expect: ['f dest 640'],
  },
  {
    name: 'wildcard matches land side by side',
    rule: 'ref §COPY Pattern matching: COPY *.png /dest/ adds all matching files',
    sources: [{ path: 'a.png' }, { path: 'b.png' }, { path: 'img', type: 'directory', entries: ['c.png'] }],
    dest: '/dest',
    destIsDir: true,
    expect: ['d dest', 'f dest/a.png', 'f dest/b.png', 'f dest/c.png'],
  },
  {
    name: 'a folder created by an earlier source receives a later file',
    rule: 'BuildKit (fsutil copy): once a source made the destination a directory, later files go inside it',
    sources: [{ path: 'dir', type: 'directory', entries: ['x'] }, { path: 'file' }],
    dest: '/out',
    destIsDir: false,
    expect: ['d out', 'f out/x', 'f out/file'],
  },
  {
    name: '--parents keeps each source\'s path',
    rule: 'ref §COPY --parents: COPY --parents ./x/a.txt ./y/a.txt /parents/ gives /parents/x/a.txt and /parents/y/a.txt',
    sources: [{ path: 'x/a.txt', source: './x/a.txt' }, { path: 'y/a.txt', source: './y/a.txt' }],
    dest: '/parents',
    destIsDir: true,
    parents: true,
    expect: ['d parents', 'd parents/x', 'f parents/x/a.txt', 'd parents/y', 'f parents/y/a.txt'],
  },
  {
    name: 'without --parents the same sources collide on one name',
    rule: 'ref §COPY --parents: COPY ./x/a.txt ./y/a.txt /no_parents/ gives /no_parents/a.txt (BuildKit silently overwrites)',
    sources: [{ path: 'x/a.txt', mode: 0o600 }, { path: 'y/a.txt', mode: 0o640 }],
    dest: '/no_parents',
    destIsDir: true,
    expect: ['d no_parents', 'f no_parents/a.txt 640'],
  },
  {
    name: '--parents keeps only what follows a /./ pivot',
    rule: 'ref §COPY --parents: COPY --parents ./x/./y/*.txt /parents/ gives /parents/y/a.txt',
    sources: [
      { path: 'x/y/a.txt', source: './x/./y/*.txt' },
      { path: 'x/y/b.txt', source: './x/./y/*.txt' },
    ],
    dest: '/parents',
    destIsDir: true,
    parents: true,
    expect: ['d parents', 'd parents/y', 'f parents/y/a.txt', 'f parents/y/b.txt'],
  },
  {
    name: '--parents with a directory source keeps the directory\'s path',
    rule: 'ref §COPY --parents (parent directories of src entries are preserved)',
    sources: [{ path: 'src/pkg', type: 'directory', entries: ['a.go'], source: 'src/pkg' }],
    dest: '/go',
    destIsDir: true,
    parents: true,
    expect: ['d go', 'd go/src', 'd go/src/pkg', 'f go/src/pkg/a.go'],
  },
  {
    name: '--parents with ** matches at any depth',
    rule: 'ref §COPY --parents: COPY --parents ./src/**/*.txt /parents/ keeps src/x/y/c.txt',
    sources: [
      { path: 'src/a.txt', source: './src/**/*.txt' },
      { path: 'src/x/b.txt', source: './src/**/*.txt' },
      { path: 'src/x/y/c.txt', source: './src/**/*.txt' },
    ],
    dest: '/parents',
    destIsDir: true,
    parents: true,
    expect: ['d parents', 'd parents/src', 'f parents/src/a.txt', 'd parents/src/x', 'f parents/src/x/b.txt', 'd parents/src/x/y', 'f parents/src/x/y/c.txt'],
  },
  {
    name: 'a symlinked destination folder is followed',
    rule: 'ref §COPY --link: without --link, COPY follows a symlink in the destination path',
    fs: ['d real', 'l link -> /real'],
    sources: [{ path: 'a.txt' }],
    dest: '/link',
    destIsDir: true,
    expect: ['d real', 'f real/a.txt'],
  },
  {
    name: 'a relative symlink in the middle of the destination path is followed',
    rule: 'ref §COPY --link (symlinks in the destination path are followed without --link)',
    fs: ['d var', 'd var/lib', 'd var/lib/app', 'l var/app -> lib/app'],
    sources: [{ path: 'state.db' }],
    dest: '/var/app/data',
    destIsDir: true,
    expect: ['d var', 'd var/lib', 'd var/lib/app', 'd var/lib/app/data', 'f var/lib/app/data/state.db'],
  },
  {
    name: 'a destination naming a symlink to a folder, without a slash, copies into the folder',
    rule: 'BuildKit (fsutil copy stats the destination, following links): a directory destination receives the file',
    fs: ['d opt', 'd opt/v2', 'l opt/current -> v2'],
    sources: [{ path: 'bin' }],
    dest: '/opt/current',
    destIsDir: false,
    expect: ['d opt', 'd opt/v2', 'f opt/v2/bin'],
  },
  {
    name: 'a file destination below a symlinked folder lands in the real folder',
    rule: 'ref §COPY --link (symlinks in the destination path are followed without --link)',
    fs: ['d real', 'l link -> /real'],
    sources: [{ path: 'a.txt' }],
    dest: '/link/renamed.txt',
    destIsDir: false,
    expect: ['d real', 'f real/renamed.txt'],
  },
  {
    name: 'with --link a symlinked destination is not followed',
    rule: 'ref §COPY --link: COPY/ADD can not follow a symlink in the destination; the path holds only directories',
    fs: ['d real', 'l link -> /real'],
    sources: [{ path: 'a.txt' }],
    dest: '/link',
    destIsDir: true,
    link: true,
    expect: ['d link 755', 'f link/a.txt'],
  },
  {
    name: 'with --link a copied folder brings its own mode',
    rule: 'ref §COPY --link: when copying a directory, the existing mode is overridden with the new mode from the copied path',
    fs: ['d tmp 1777'],
    sources: [{ path: 'tmpfiles', type: 'directory', mode: 0o755, entries: ['x'] }],
    dest: '/tmp',
    destIsDir: true,
    link: true,
    expect: ['d tmp 755', 'f tmp/x'],
  },
  {
    name: '--chown sets the owner of files, folders and created parents',
    rule: 'ref §COPY --chown: sets ownership of copied files; without it files get UID and GID 0',
    sources: [{ path: 'site', type: 'directory', entries: ['index.html', 'css/', 'css/a.css'] }],
    dest: '/srv/www',
    destIsDir: true,
    owner: { uid: 55, gid: 1001 },
    expect: ['d srv 755 55:1001', 'd srv/www 755 55:1001', 'f srv/www/index.html 644 55:1001', 'd srv/www/css 755 55:1001', 'f srv/www/css/a.css 644 55:1001'],
  },
  {
    name: 'without --chown context files are owned by root',
    rule: 'ref §COPY --chown: without this flag, files are created with UID and GID of 0',
    sources: [{ path: 'a', uid: 0, gid: 0 }],
    dest: '/a',
    destIsDir: false,
    expect: ['f a 644 0:0'],
  },
  {
    name: 'files from another stage keep the owner they had there',
    rule: 'ref §COPY --from (files are copied with their metadata); BuildKit keeps owners of stage files',
    sources: [{ path: 'out/app', uid: 1000, gid: 1000, mode: 0o755 }],
    dest: '/usr/bin',
    destIsDir: true,
    expect: ['d usr 755 0:0', 'd usr/bin 755 0:0', 'f usr/bin/app 755 1000:1000'],
  },
  {
    name: '--chmod octal sets files and copied folders',
    rule: 'ref §COPY --chmod: octal notation such as 755 or 644',
    sources: [{ path: 'bin', type: 'directory', mode: 0o700, entries: ['tool 600'] }],
    dest: '/opt/bin',
    destIsDir: true,
    chmod: '755',
    expect: ['d opt 755', 'd opt/bin 755', 'f opt/bin/tool 755'],
  },
  {
    name: '--chmod u=rwX,go=rX gives folders 755 and files 644, keeping executables',
    rule: 'ref §COPY --chmod: u=rwX,go=rX sets directories to 755 and files to 644, preserving the executable bit on files that have it',
    sources: [{ path: 'app', type: 'directory', mode: 0o700, entries: ['data.txt 600', 'run.sh 700', 'lib/ 700'] }],
    dest: '/app',
    destIsDir: true,
    chmod: 'u=rwX,go=rX',
    expect: ['d app 755', 'f app/data.txt 644', 'f app/run.sh 755', 'd app/lib 755'],
  },
  {
    name: '--chmod +x adds execute for everyone',
    rule: 'ref §COPY --chmod: COPY --chmod=+x script.sh /app/',
    sources: [{ path: 'script.sh', mode: 0o640 }],
    dest: '/app',
    destIsDir: true,
    chmod: '+x',
    expect: ['d app 755', 'f app/script.sh 751'],
  },
  {
    name: '--chmod g=u copies the owner\'s bits to the group',
    rule: 'ref §COPY --chmod: COPY --chmod=g=u config/ /config/',
    sources: [{ path: 'config', type: 'directory', mode: 0o700, entries: ['a 600'] }],
    dest: '/config',
    destIsDir: true,
    chmod: 'g=u',
    // The destination folder is created, not copied: --chmod applies to what is copied into it.
    expect: ['d config 755', 'f config/a 660'],
  },
  {
    name: 'a file to the root folder',
    rule: 'ref §COPY Destination: ADD file.txt / adds the file at the root',
    sources: [{ path: 'file.txt' }],
    dest: '/',
    destIsDir: true,
    expect: ['f file.txt'],
  },
  {
    name: 'a file to / without a slash still lands inside the root folder',
    rule: 'BuildKit (fsutil copy): / is an existing directory, so the file keeps its name',
    sources: [{ path: 'file.txt' }],
    dest: '/',
    destIsDir: false,
    expect: ['f file.txt'],
  },
  {
    name: 'symlinks inside a copied folder stay symlinks',
    rule: 'ref §COPY Source (the directory\'s contents are copied with their metadata); links are not followed below the source',
    sources: [{ path: 'rel', type: 'directory', entries: ['current -> v2', 'v2/', 'v2/bin'] }],
    dest: '/opt',
    destIsDir: true,
    expect: ['d opt', 'l opt/current 777', 'd opt/v2', 'f opt/v2/bin'],
  },
  {
    name: 'a later file overwrites an earlier one at the same path',
    rule: 'ref §COPY Source: conflicts are resolved in favor of the content being added',
    sources: [
      { path: 'a', type: 'directory', entries: ['conf 600'] },
      { path: 'b', type: 'directory', entries: ['conf 640'] },
    ],
    dest: '/etc',
    destIsDir: true,
    expect: ['d etc', 'f etc/conf 640'],
  },
  {
    name: 'a file named as the destination replaces an existing file',
    rule: 'ref §COPY Destination: the source file is written to the destination path as a file',
    fs: ['d etc', 'f etc/hosts 600'],
    sources: [{ path: 'hosts' }],
    dest: '/etc/hosts',
    destIsDir: false,
    expect: ['d etc', 'f etc/hosts 644'],
  },
  {
    name: 'an empty directory source only makes the destination',
    rule: 'ref §COPY Source (a directory\'s contents, here none, are copied)',
    sources: [{ path: 'empty', type: 'directory', mode: 0o750, entries: [] }],
    dest: '/data',
    destIsDir: true,
    expect: ['d data 755'],
  },
];
