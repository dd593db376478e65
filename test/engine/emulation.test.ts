import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { canEmulate } from '../../src/engine/emulation.ts';
import { tempDir } from '../helpers/cli.ts';
import { buildProject, writeProject } from '../helpers/build.ts';

test('binfmt_misc handlers are recognised only when enabled', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'qemu-aarch64'), 'enabled\ninterpreter /usr/bin/qemu-aarch64-static\n');
  await fs.writeFile(path.join(dir, 'qemu-riscv64'), 'disabled\n');
  t.true(canEmulate('arm64', dir));
  t.false(canEmulate('riscv64', dir));
  t.false(canEmulate('s390x', dir));
  t.false(canEmulate('arm64', path.join(dir, 'missing')));
});

test('a foreign-architecture RUN without emulation fails up front, naming the step; RUN-free and $BUILDPLATFORM stages need nothing', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM --platform=$BUILDPLATFORM busybox AS build\nRUN echo cross-compiling\nFROM busybox\nCOPY a /a\nRUN echo native-only\n',
    a: 'a',
  });
  const err = await t.throwsAsync(buildProject(p, { platform: 'linux/s390x' }));
  t.regex(err!.message, /RUN in stage 1 must run linux\/s390x programs/);
  t.is((err as { location?: { line: number } }).location?.line, 5);
  // Without RUN in the foreign stage, nothing is needed (the base lacks s390x, which is its own error).
  const q = await writeProject(await tempDir(t), { Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' });
  const run = await buildProject(q, { platform: 'linux/s390x' });
  t.is(run.image.config.architecture, 's390x');
});
