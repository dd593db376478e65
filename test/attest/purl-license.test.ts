import test from 'ava';
import { apkPurl, debPurl, formatPurl, golangPurl, npmPurl, purlEncode, pypiPurl } from '../../src/attest/purl.ts';
import { classifierLicense, combineLicenses, normalizeLicense, spdxIdentifier } from '../../src/attest/license.ts';

test('purl: components are percent-encoded except letters, digits, .-_~ and colon', (t) => {
  t.is(purlEncode('1:2.36-9+deb12u4'), '1:2.36-9%2Bdeb12u4');
  t.is(purlEncode('a b/c@d?e#f'), 'a%20b%2Fc%40d%3Fe%23f');
  t.is(purlEncode('é'), '%C3%A9');
});

test('purl: deb with epoch, plus, arch and distro qualifiers in key order', (t) => {
  t.is(
    debPurl('libc6', '2.36-9+deb12u4', 'amd64', { id: 'debian', versionId: '12' }),
    'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12',
  );
  t.is(debPurl('zlib1g', '1:1.2.13.dfsg-1', 'amd64', { id: 'debian', versionId: '12' }), 'pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12');
  t.is(debPurl('bash', '5.2', 'arm64', { id: 'ubuntu', versionId: '22.04' }), 'pkg:deb/ubuntu/bash@5.2?arch=arm64&distro=ubuntu-22.04');
  // A release without VERSION_ID (sid) names its codename.
  t.is(debPurl('bash', '5.2', 'amd64', { id: 'debian', codename: 'trixie' }), 'pkg:deb/debian/bash@5.2?arch=amd64&distro=debian-trixie');
});

test('purl: apk, npm scopes, normalised PyPI names, Go module paths', (t) => {
  t.is(apkPurl('musl', '1.2.4-r2', 'x86_64', { id: 'alpine', versionId: '3.19.1' }), 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1');
  t.is(npmPurl('@Babel/Core', '7.24.0'), 'pkg:npm/%40babel/core@7.24.0');
  t.is(npmPurl('lodash', '4.17.21'), 'pkg:npm/lodash@4.17.21');
  t.is(pypiPurl('Foo_Bar.baz', '1.0'), 'pkg:pypi/foo-bar-baz@1.0');
  t.is(golangPurl('github.com/spf13/cobra', 'v1.8.0'), 'pkg:golang/github.com/spf13/cobra@v1.8.0');
  t.is(golangPurl('example.com/hello', '(devel)'), 'pkg:golang/example.com/hello');
  t.is(golangPurl('stdlib', '1.19.8'), 'pkg:golang/stdlib@1.19.8');
  t.is(formatPurl({ type: 'generic', name: 'x', qualifiers: { b: '2', a: '1', empty: '' }, subpath: '/a/../b/' }), 'pkg:generic/x?a=1&b=2#a/b');
});

test('licence: SPDX identifiers keep their spelling, Debian and common names map to them', (t) => {
  t.is(spdxIdentifier('mit'), 'MIT');
  t.is(spdxIdentifier('Expat'), 'MIT');
  t.is(spdxIdentifier('GPL-2+'), 'GPL-2.0-or-later');
  t.is(spdxIdentifier('GPL-2'), 'GPL-2.0-only');
  t.is(spdxIdentifier('LGPL-2.1+'), 'LGPL-2.1-or-later');
  t.is(spdxIdentifier('GPL-2.0'), 'GPL-2.0-only');
  t.is(spdxIdentifier('BSD-3-clause'), 'BSD-3-Clause');
  t.is(spdxIdentifier('Apache License 2.0'), 'Apache-2.0');
  t.is(spdxIdentifier('public-domain'), undefined);
});

test('licence: expressions, implicit AND lists, unknown names as LicenseRefs', (t) => {
  t.deepEqual(normalizeLicense('MIT OR Apache-2.0')?.expression, 'MIT OR Apache-2.0');
  t.deepEqual(normalizeLicense('(MIT OR Apache-2.0) AND BSD-3-Clause')?.expression, '(MIT OR Apache-2.0) AND BSD-3-Clause');
  t.deepEqual(normalizeLicense('GPL-2+ or Artistic')?.expression, 'GPL-2.0-or-later OR Artistic-1.0');
  t.deepEqual(normalizeLicense('MIT BSD-2-Clause GPL-2.0-or-later')?.expression, 'MIT AND BSD-2-Clause AND GPL-2.0-or-later');
  t.deepEqual(normalizeLicense('GPL-2.0-or-later WITH Classpath-exception-2.0')?.expression, 'GPL-2.0-or-later WITH Classpath-exception-2.0');
  const pd = normalizeLicense('public-domain');
  t.is(pd?.expression, 'LicenseRef-public-domain');
  t.deepEqual([...(pd?.refs ?? [])], [['LicenseRef-public-domain', 'public-domain']]);
  // An exception SPDX does not list makes the whole value a reference, never a wrong WITH.
  t.is(normalizeLicense('GPL-2+ with OpenSSL exception')?.expression, 'LicenseRef-GPL-2-with-OpenSSL-exception');
  t.is(normalizeLicense('MIT AND')?.expression, 'LicenseRef-MIT-AND');
  t.is(normalizeLicense('SEE LICENSE IN LICENSE.md'), undefined);
  t.is(normalizeLicense('UNKNOWN'), undefined);
  t.is(normalizeLicense('line one\nline two'), undefined);
});

test('licence: Trove classifiers and combining several declarations', (t) => {
  t.is(classifierLicense('License :: OSI Approved :: MIT License')?.expression, 'MIT');
  t.is(classifierLicense('License :: OSI Approved :: BSD License')?.expression, 'LicenseRef-BSD-License');
  t.is(classifierLicense('License :: OSI Approved'), undefined);
  const combined = combineLicenses([normalizeLicense('MIT')!, normalizeLicense('GPL-2+ or Artistic')!, normalizeLicense('MIT')!]);
  t.is(combined?.expression, '(GPL-2.0-or-later OR Artistic-1.0) AND MIT');
  t.is(combineLicenses([]), undefined);
});
