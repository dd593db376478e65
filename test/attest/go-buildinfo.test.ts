import anyTest from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { bufferSource, parseModInfo, readGoBuildInfo, scanGoStream } from '../../src/attest/scan/go-buildinfo.ts';
import { scanLayers } from '../../src/attest/scan/scan.ts';
import { CACHE_ROOT } from '../helpers/busybox.ts';
import { testNeeding } from '../helpers/tools.ts';
import { ensureDebianTool } from './helpers/apt.ts';
import { buildElf, inlineBuildInfo, pointerFormatElf, wrapModInfo } from './helpers/elf.ts';
import { file, layer } from './helpers/layers.ts';

const test = anyTest;

const MOD = [
  'path\tgithub.com/acme/tool/cmd/tool',
  'mod\tgithub.com/acme/tool\tv1.2.3\th1:mainsum=',
  'dep\tgithub.com/spf13/cobra\tv1.8.0\th1:cobrasum=',
  'dep\tgolang.org/x/sys\tv0.15.0\th1:syssum=',
  '=>\tgithub.com/fork/sys\tv0.15.1\th1:forksum=',
  'dep\texample.com/local\tv0.0.0',
  '=>\t../local\t(devel)\t',
  'build\t-compiler=gc',
  'build\tvcs.revision=0123456789abcdef',
  '',
].join('\n');

function stream(data: Buffer, chunk = 4096): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  })());
}

test('module text: main module, dependencies, replacements (module and local directory), settings', (t) => {
  const info = parseModInfo(MOD);
  t.is(info.path, 'github.com/acme/tool/cmd/tool');
  t.deepEqual(info.main, { path: 'github.com/acme/tool', version: 'v1.2.3', sum: 'h1:mainsum=' });
  t.deepEqual(info.deps, [
    { path: 'github.com/spf13/cobra', version: 'v1.8.0', sum: 'h1:cobrasum=' },
    { path: 'github.com/fork/sys', version: 'v0.15.1', sum: 'h1:forksum=' },
    { path: 'example.com/local', version: '(devel)' },
  ]);
  t.deepEqual(info.settings, [['-compiler', 'gc'], ['vcs.revision', '0123456789abcdef']]);
});

test('inline format (Go ≥ 1.18), 64-bit little-endian: random access and one streaming pass agree', async (t) => {
  const elf = buildElf({
    is64: true,
    little: true,
    segments: [
      { flags: 5, vaddr: 0x400000, data: Buffer.alloc(0x2000, 0x90) },
      { flags: 6, vaddr: 0x600000, data: Buffer.concat([inlineBuildInfo('go1.22.1', wrapModInfo(MOD)), Buffer.alloc(0x3000)]) },
    ],
  });
  const info = await readGoBuildInfo(bufferSource(elf));
  t.is(info?.goVersion, 'go1.22.1');
  t.is(info?.main?.version, 'v1.2.3');
  t.is(info?.deps.length, 3);
  for (const chunk of [1, 7, 4096, 1 << 20]) {
    t.deepEqual(await scanGoStream(stream(elf, chunk), elf.length), { kind: 'go', info: info! }, `chunk ${chunk}`);
  }
});

test('pointer format (Go < 1.18) in 64-bit little-endian and 32-bit big-endian files', async (t) => {
  for (const [is64, little] of [[true, true], [false, false]] as const) {
    const elf = pointerFormatElf({ is64, little, version: 'go1.16.15', mod: wrapModInfo(MOD) });
    const info = await readGoBuildInfo(bufferSource(elf));
    t.is(info?.goVersion, 'go1.16.15');
    t.is(info?.main?.path, 'github.com/acme/tool');
    t.is(info?.deps[1]?.path, 'github.com/fork/sys');
    // The strings live before the header in the file: one pass cannot follow the pointers.
    t.deepEqual(await scanGoStream(stream(elf), elf.length), { kind: 'needs-random-access' });
  }
});

test('no build info: a C program, a shell script, a truncated or misaligned header', async (t) => {
  const c = buildElf({ is64: true, little: true, segments: [{ flags: 6, vaddr: 0x600000, data: Buffer.alloc(512, 1) }] });
  t.is(await readGoBuildInfo(bufferSource(c)), undefined);
  t.deepEqual(await scanGoStream(stream(c), c.length), { kind: 'not-go' });
  const script = Buffer.from('#!/bin/sh\necho hello\n'.repeat(10));
  t.deepEqual(await scanGoStream(stream(script), script.length), { kind: 'not-go' });
  const misaligned = buildElf({
    is64: true,
    little: true,
    segments: [{ flags: 6, vaddr: 0x600000, data: Buffer.concat([Buffer.alloc(8), inlineBuildInfo('go1.22.1', wrapModInfo(MOD))]) }],
  });
  t.is(await readGoBuildInfo(bufferSource(misaligned)), undefined);
  const truncated = buildElf({ is64: true, little: true, segments: [{ flags: 6, vaddr: 0x600000, data: inlineBuildInfo('go1.22.1', wrapModInfo(MOD)).subarray(0, 60) }] });
  t.is(await readGoBuildInfo(bufferSource(truncated)), undefined);
});

test('layers: Go programs become golang packages (main module, deps, stdlib); old ones are read again from their layer', async (t) => {
  const inline = buildElf({ is64: true, little: true, segments: [{ flags: 6, vaddr: 0x600000, data: inlineBuildInfo('go1.22.1', wrapModInfo(MOD)) }] });
  const old = pointerFormatElf({ is64: true, little: true, version: 'go1.16.15', mod: wrapModInfo('path\texample.com/old\nmod\texample.com/old\tv0.9.0\t\n') });
  const r = await scanLayers([
    await layer([file('usr/local/bin/tool', inline, 0o755), file('usr/local/bin/old', old, 0o755), file('data/not-executable', inline, 0o644)]),
  ]);
  t.deepEqual(
    r.packages.map((p) => [p.purl, p.locations.map((l) => l.path).join(','), p.goMain === true]),
    [
      ['pkg:golang/example.com/local', '/usr/local/bin/tool', false],
      ['pkg:golang/example.com/old@v0.9.0', '/usr/local/bin/old', true],
      ['pkg:golang/github.com/acme/tool@v1.2.3', '/usr/local/bin/tool', true],
      ['pkg:golang/github.com/fork/sys@v0.15.1', '/usr/local/bin/tool', false],
      ['pkg:golang/github.com/spf13/cobra@v1.8.0', '/usr/local/bin/tool', false],
      ['pkg:golang/stdlib@1.16.15', '/usr/local/bin/old', false],
      ['pkg:golang/stdlib@1.22.1', '/usr/local/bin/tool', false],
    ],
  );
  t.is(r.packages.find((p) => p.name === 'github.com/spf13/cobra')?.checksum, 'h1:cobrasum=');
  t.deepEqual(r.warnings, []);
});

ensureDebianTool('go', 'golang-go');
const withGo = testNeeding(['go'], 'Go build information from a real Go binary');

withGo('a binary built by the installed Go toolchain: the scanner lists what `go version -m` lists', async (t) => {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-go-'));
  try {
    await fs.mkdir(path.join(work, 'greet'));
    await fs.mkdir(path.join(work, 'hello'));
    await fs.writeFile(path.join(work, 'greet/go.mod'), 'module example.com/greet\n\ngo 1.19\n');
    await fs.writeFile(path.join(work, 'greet/greet.go'), 'package greet\n\nfunc Hello() string { return "hello" }\n');
    await fs.writeFile(path.join(work, 'hello/go.mod'), 'module example.com/hello\n\ngo 1.19\n\nrequire example.com/greet v0.1.0\n\nreplace example.com/greet => ../greet\n');
    await fs.writeFile(path.join(work, 'hello/main.go'), 'package main\n\nimport (\n\t"fmt"\n\t"example.com/greet"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n');
    const bin = path.join(work, 'hello-bin');
    const env = {
      ...process.env,
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
      GOTOOLCHAIN: 'local',
      GOCACHE: path.join(CACHE_ROOT, 'go-build-cache'),
      GOPATH: path.join(work, 'gopath'),
      HOME: work,
    };
    execFileSync('go', ['build', '-trimpath', '-o', bin, '.'], { cwd: path.join(work, 'hello'), env, stdio: 'pipe' });
    const goVersion = execFileSync('go', ['env', 'GOVERSION'], { env, encoding: 'utf8' }).trim();
    const listed = execFileSync('go', ['version', '-m', bin], { env, encoding: 'utf8' });
    t.regex(listed, /\tdep\texample\.com\/greet\tv0\.1\.0/);

    const r = await scanLayers([await layer([file('usr/local/bin/hello', readFileSync(bin), 0o755)])]);
    t.deepEqual(
      r.packages.map((p) => [p.name, p.version, p.goVersion]),
      [
        ['example.com/greet', '(devel)', goVersion],
        ['example.com/hello', '(devel)', goVersion],
        ['stdlib', goVersion.replace(/^go/, ''), goVersion],
      ],
    );
    t.true(r.packages.find((p) => p.name === 'example.com/hello')!.goMain);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
});
