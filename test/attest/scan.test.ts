import test from 'ava';
import { scanLayers } from '../../src/attest/scan/scan.ts';
import type { ScanResult } from '../../src/attest/scan/types.ts';
import { dir, file, hardlink, layer, opaque, symlink, whiteout } from './helpers/layers.ts';

const byPurl = (r: ScanResult): Map<string, ScanResult['packages'][number]> => new Map(r.packages.map((p) => [p.purl, p]));
const purls = (r: ScanResult, ecosystem?: string): string[] => r.packages.filter((p) => !ecosystem || p.ecosystem === ecosystem).map((p) => p.purl);

const DEBIAN_OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n';

function dpkgStanza(name: string, version: string, extra = ''): string {
  return `Package: ${name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: ${version}\n${extra}Description: ${name}\n long description\n .\n more\n\n`;
}

test('Alpine: apk database with licences, origins and the distro from os-release', async (t) => {
  const installed = [
    'C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n',
    'C:Q1def=\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\no:busybox\n',
    'P:ssl_client\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only MIT\no:busybox\n',
  ].join('\n');
  const r = await scanLayers([
    await layer([
      dir('etc'),
      file('etc/os-release', 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'),
      dir('lib'), dir('lib/apk'), dir('lib/apk/db'),
      file('lib/apk/db/installed', installed),
    ]),
  ]);
  t.deepEqual(r.distro, { id: 'alpine', versionId: '3.19.1', prettyName: 'Alpine Linux v3.19' });
  t.deepEqual(purls(r), [
    'pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1',
    'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1',
    'pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1',
  ]);
  const binsh = r.packages.find((p) => p.name === 'busybox-binsh')!;
  t.is(binsh.sourceName, 'busybox');
  t.deepEqual(binsh.licenses, ['GPL-2.0-only']);
  t.deepEqual(binsh.locations, [{ path: '/lib/apk/db/installed', layerIndex: 0 }]);
  t.is(r.packages.find((p) => p.name === 'musl')!.sourceName, undefined);
});

test('npm: installed package.json files (scoped, nested) and package-lock v3, yarn v1, pnpm v6 and v9', async (t) => {
  const lock = {
    name: 'app', lockfileVersion: 3, requires: true,
    packages: {
      '': { name: 'app', version: '1.0.0' },
      'node_modules/express': { version: '4.18.2', license: 'MIT' },
      'node_modules/@types/node': { version: '20.11.0', license: 'MIT', dev: true },
      'node_modules/express/node_modules/debug': { version: '2.6.9' },
      'packages/local': { name: 'local', version: '0.0.1' },
      'node_modules/local': { resolved: 'packages/local', link: true },
    },
  };
  const yarn = '# yarn lockfile v1\n\n\n"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.22.13":\n  version "7.23.5"\n  resolved "https://registry.yarnpkg.com/..."\n\nleft-pad@1.3.0:\n  version "1.3.0"\n';
  const pnpm9 = "lockfileVersion: '9.0'\n\nimporters:\n\n  .:\n    dependencies:\n      is-odd:\n        specifier: ^3.0.1\n        version: 3.0.1\n\npackages:\n\n  '@scope/thing@2.0.0':\n    resolution: {integrity: sha512-x}\n\n  is-odd@3.0.1:\n    resolution: {integrity: sha512-y}\n\n  react-dom@18.2.0(react@18.2.0):\n    resolution: {integrity: sha512-z}\n\nsnapshots:\n\n  is-odd@3.0.1: {}\n";
  const pnpm6 = "lockfileVersion: '6.0'\n\npackages:\n\n  /is-number@6.0.0:\n    resolution: {integrity: sha512-a}\n    dev: false\n\n  /@scope/other@1.2.3(peer@1.0.0):\n    resolution: {integrity: sha512-b}\n";
  const r = await scanLayers([
    await layer([
      dir('app'),
      file('app/package.json', JSON.stringify({ name: 'app', version: '1.0.0' })),
      file('app/package-lock.json', JSON.stringify(lock)),
      file('app/node_modules/express/package.json', JSON.stringify({ name: 'express', version: '4.18.2', license: 'MIT' })),
      file('app/node_modules/express/node_modules/debug/package.json', JSON.stringify({ name: 'debug', version: '2.6.9', license: { type: 'MIT' } })),
      file('app/node_modules/@types/node/package.json', JSON.stringify({ name: '@types/node', version: '20.11.0', license: 'MIT' })),
      // Not an installed package's manifest: a file inside a package.
      file('app/node_modules/express/lib/package.json', JSON.stringify({ name: 'inner', version: '9.9.9' })),
      file('app/node_modules/.package-lock.json', JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/hidden': { version: '1.0.0' } } })),
      file('app/node_modules/old/package.json', JSON.stringify({ name: 'old', version: '0.1.0', licenses: [{ type: 'MIT' }, { type: 'GPL-2.0-only' }] })),
      file('app/node_modules/broken/package.json', '{ not json'),
      file('web/yarn.lock', yarn),
      file('pn/pnpm-lock.yaml', pnpm9),
      file('pn6/pnpm-lock.yaml', pnpm6),
    ]),
  ]);
  t.deepEqual(purls(r), [
    'pkg:npm/%40babel/code-frame@7.23.5',
    'pkg:npm/%40scope/other@1.2.3',
    'pkg:npm/%40scope/thing@2.0.0',
    'pkg:npm/%40types/node@20.11.0',
    'pkg:npm/debug@2.6.9',
    'pkg:npm/express@4.18.2',
    'pkg:npm/is-number@6.0.0',
    'pkg:npm/is-odd@3.0.1',
    'pkg:npm/left-pad@1.3.0',
    'pkg:npm/local@0.0.1',
    'pkg:npm/old@0.1.0',
    'pkg:npm/react-dom@18.2.0',
  ]);
  const express = byPurl(r).get('pkg:npm/express@4.18.2')!;
  // Found twice (lock file and installed), listed once with both places.
  t.deepEqual(express.locations.map((l) => l.path), ['/app/node_modules/express/package.json', '/app/package-lock.json']);
  t.deepEqual(byPurl(r).get('pkg:npm/debug@2.6.9')!.licenses, ['MIT']);
  t.deepEqual(byPurl(r).get('pkg:npm/old@0.1.0')!.licenses, ['(MIT OR GPL-2.0-only)']);
  t.is(r.warnings.length, 1);
  t.regex(r.warnings[0]!, /app\/node_modules\/broken\/package\.json in layer 0 .*unreadable/);
});

test('Python: dist-info METADATA, egg-info folder and file, licence fields, normalised purls', async (t) => {
  const metadata = (name: string, version: string, extra: string): string => `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n${extra}\nLong description\nLicense: NOT-A-HEADER\n`;
  const r = await scanLayers([
    await layer([
      file('usr/lib/python3/dist-packages/Flask_Cors-4.0.0.dist-info/METADATA', metadata('Flask_Cors', '4.0.0', 'License: MIT\nClassifier: License :: OSI Approved :: MIT License\n')),
      file('usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA', metadata('requests', '2.31.0', 'License: Apache 2.0\n')),
      file('usr/local/lib/python3.11/site-packages/attrs-23.2.0.dist-info/METADATA', metadata('attrs', '23.2.0', 'License-Expression: MIT\nLicense-File: LICENSE\n')),
      file('usr/local/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA', metadata('six', '1.16.0', 'Classifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language :: Python\n')),
      file('usr/lib/python3/dist-packages/chardet-5.1.0.egg-info/PKG-INFO', metadata('chardet', '5.1.0', 'License: LGPL\n')),
      file('usr/lib/python3/dist-packages/zope.interface-5.5.2.egg-info', metadata('zope.interface', '5.5.2', 'License: ZPL 2.1\n')),
      file('usr/lib/python3/dist-packages/notes.dist-info/RECORD', 'x'),
    ]),
  ]);
  t.deepEqual(purls(r), [
    'pkg:pypi/attrs@23.2.0',
    'pkg:pypi/chardet@5.1.0',
    'pkg:pypi/flask-cors@4.0.0',
    'pkg:pypi/requests@2.31.0',
    'pkg:pypi/six@1.16.0',
    'pkg:pypi/zope-interface@5.5.2',
  ]);
  const p = byPurl(r);
  t.is(p.get('pkg:pypi/flask-cors@4.0.0')!.name, 'Flask_Cors');
  t.is(p.get('pkg:pypi/attrs@23.2.0')!.licenseExpression, 'MIT');
  t.deepEqual(p.get('pkg:pypi/six@1.16.0')!.licenseClassifiers, ['License :: OSI Approved :: MIT License']);
  t.deepEqual(p.get('pkg:pypi/requests@2.31.0')!.licenses, ['Apache 2.0']);
  t.is(p.get('pkg:pypi/chardet@5.1.0')!.source, 'python-egg-info');
});

test('whiteouts, opaque directories and replaced directories remove packages of lower layers', async (t) => {
  const base = await layer([
    dir('etc'), symlink('etc/os-release', '../usr/lib/os-release'), file('usr/lib/os-release', DEBIAN_OS_RELEASE),
    dir('var/lib/dpkg'),
    file('var/lib/dpkg/status', dpkgStanza('base-files', '12.4') + dpkgStanza('removed-later', '1.0') + dpkgStanza('libfoo', '2.0')),
    file('app/node_modules/left-pad/package.json', JSON.stringify({ name: 'left-pad', version: '1.3.0' })),
    file('app/node_modules/keep/package.json', JSON.stringify({ name: 'keep', version: '1.0.0' })),
    file('srv/node_modules/gone-with-dir/package.json', JSON.stringify({ name: 'gone-with-dir', version: '1.0.0' })),
    file('py/site/a-1.0.dist-info/METADATA', 'Name: a\nVersion: 1.0\n'),
  ]);
  const second = await layer(
    [
      // apt removed one package, upgraded another and installed a new one.
      file('var/lib/dpkg/status', dpkgStanza('base-files', '12.4') + dpkgStanza('libfoo', '2.1') + dpkgStanza('newpkg', '0.5')),
      whiteout('app/node_modules/left-pad'),
      // A file where a lower layer had a directory hides the whole directory.
      file('srv/node_modules', 'now a file'),
      // Added in this layer before the opaque marker: opaque hides only lower layers.
      file('py/site/b-2.0.dist-info/METADATA', 'Name: b\nVersion: 2.0\n'),
      opaque('py/site'),
    ],
    { gzip: false },
  );
  const third = await layer([file('app/node_modules/left-pad/package.json', JSON.stringify({ name: 'left-pad', version: '1.3.1' }))]);
  const r = await scanLayers([base, second, third]);
  t.deepEqual(
    r.packages.map((p) => `${p.purl} layer=${p.layerIndex}`),
    [
      'pkg:deb/debian/base-files@12.4?arch=amd64&distro=debian-12 layer=0',
      'pkg:deb/debian/libfoo@2.1?arch=amd64&distro=debian-12 layer=1',
      'pkg:deb/debian/newpkg@0.5?arch=amd64&distro=debian-12 layer=1',
      'pkg:npm/keep@1.0.0 layer=0',
      'pkg:npm/left-pad@1.3.1 layer=2',
      'pkg:pypi/b@2.0 layer=1',
    ],
  );
  t.is(r.packages[0]!.layer, base.descriptor.diffID);
  t.is(r.packages[1]!.layer, second.descriptor.diffID);
  t.deepEqual(r.layers, [base.descriptor.diffID, second.descriptor.diffID, third.descriptor.diffID]);
});

test('a whiteout of the dpkg database and a fresh one attribute every package to the new layer', async (t) => {
  const r = await scanLayers([
    await layer([file('var/lib/dpkg/status', dpkgStanza('a', '1'))]),
    await layer([whiteout('var/lib/dpkg/status')]),
    await layer([file('var/lib/dpkg/status', dpkgStanza('a', '1') + dpkgStanza('b', '1'))]),
  ]);
  t.deepEqual(r.packages.map((p) => [p.name, p.layerIndex]), [['a', 2], ['b', 2]]);
});

test('dpkg: not-installed states are left out; sources, copyright licences through symlinked doc folders', async (t) => {
  const copyright = 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: gcc\n\nFiles: *\nCopyright: FSF\nLicense: GPL-3+ with GCC-exception-3.1\n\nFiles: libiberty/*\nLicense: LGPL-2.1+\n\nLicense: LGPL-2.1+\n On Debian systems ...\n';
  const r = await scanLayers([
    await layer([
      file('etc/os-release', DEBIAN_OS_RELEASE),
      file(
        'var/lib/dpkg/status',
        dpkgStanza('gcc-12-base', '12.2.0-14', 'Multi-Arch: same\nSource: gcc-12\n') +
          dpkgStanza('libgcc-s1', '12.2.0-14', 'Source: gcc-12 (12.2.0-14)\n') +
          dpkgStanza('zlib1g', '1:1.2.13.dfsg-1', 'Source: zlib\n') +
          'Package: purged\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n' +
          'Package: half\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 2.0\n',
      ),
      file('usr/share/doc/gcc-12-base/copyright', copyright),
      symlink('usr/share/doc/libgcc-s1', 'gcc-12-base'),
      file('usr/share/doc/zlib1g/copyright', 'This is a free-form copyright file.\nLicense: whatever\n'),
    ]),
  ]);
  t.deepEqual(purls(r), [
    'pkg:deb/debian/gcc-12-base@12.2.0-14?arch=amd64&distro=debian-12',
    'pkg:deb/debian/half@2.0?arch=amd64&distro=debian-12',
    'pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12',
    'pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12',
  ]);
  const p = byPurl(r);
  const gcc = p.get('pkg:deb/debian/gcc-12-base@12.2.0-14?arch=amd64&distro=debian-12')!;
  t.deepEqual(gcc.licenses, ['GPL-3+ with GCC-exception-3.1', 'LGPL-2.1+']);
  t.is(gcc.sourceName, 'gcc-12');
  t.deepEqual(p.get('pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12')!.licenses, gcc.licenses);
  t.deepEqual(p.get('pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12')!.licenses, []);
});

test('distroless: one file per package in status.d, md5sums ignored, /lib a symlink to usr/lib', async (t) => {
  const r = await scanLayers([
    await layer([
      symlink('lib', 'usr/lib'),
      file('usr/lib/os-release', DEBIAN_OS_RELEASE),
      symlink('etc/os-release', '/usr/lib/os-release'),
      file('var/lib/dpkg/status.d/base', 'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: x\n'),
      file('var/lib/dpkg/status.d/libc6', 'Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nSource: glibc\n'),
      file('var/lib/dpkg/status.d/libc6.md5sums', 'd41d8cd98f00b204e9800998ecf8427e  lib/x86_64-linux-gnu/libc.so.6\n'),
    ]),
    await layer([file('var/lib/dpkg/status.d/tzdata', 'Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n')]),
  ]);
  t.deepEqual(
    r.packages.map((p) => [p.purl, p.source, p.layerIndex, p.locations[0]!.path]),
    [
      ['pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12', 'dpkg-status.d', 0, '/var/lib/dpkg/status.d/base'],
      ['pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12', 'dpkg-status.d', 0, '/var/lib/dpkg/status.d/libc6'],
      ['pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12', 'dpkg-status.d', 1, '/var/lib/dpkg/status.d/tzdata'],
    ],
  );
});

test('apk database reached through a /lib symlink; copies of databases elsewhere are not the image packages', async (t) => {
  const r = await scanLayers([
    await layer([
      symlink('lib', 'usr/lib'),
      file('usr/lib/apk/db/installed', 'P:musl\nV:1.2.5-r0\nA:aarch64\n'),
      file('srv/chroot/lib/apk/db/installed', 'P:other\nV:1\nA:x86_64\n'),
      file('srv/chroot/var/lib/dpkg/status', dpkgStanza('nested', '1')),
    ]),
  ]);
  t.deepEqual(purls(r), ['pkg:apk/alpine/musl@1.2.5-r0?arch=aarch64']);
});

test('hard links carry what their target was found to be', async (t) => {
  const meta = 'Name: pkg\nVersion: 1.0\n';
  const r = await scanLayers([
    await layer([file('a/pkg-1.0.dist-info/METADATA', meta), hardlink('b/pkg-1.0.dist-info/METADATA', 'a/pkg-1.0.dist-info/METADATA')]),
  ]);
  t.deepEqual(r.packages[0]!.locations.map((l) => l.path), ['/a/pkg-1.0.dist-info/METADATA', '/b/pkg-1.0.dist-info/METADATA']);
});

test('oversized metadata files are skipped with a warning, not read', async (t) => {
  const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
  const r = await scanLayers([await layer([file('x/node_modules/big/package.json', huge)])]);
  t.is(r.packages.length, 0);
  t.regex(r.warnings[0]!, /larger than/);
});

test('the same layers give the same result, whatever the chunking', async (t) => {
  const make = async (): Promise<ScanResult> =>
    scanLayers([
      await layer([file('etc/os-release', DEBIAN_OS_RELEASE), file('var/lib/dpkg/status', dpkgStanza('b', '1') + dpkgStanza('a', '1'))]),
      await layer([file('n/node_modules/z/package.json', '{"name":"z","version":"1"}'), file('n/node_modules/y/package.json', '{"name":"y","version":"1"}')]),
    ]);
  t.deepEqual(await make(), await make());
});
