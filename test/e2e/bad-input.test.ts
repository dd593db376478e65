/**
 * Bad input gets a clear error naming the file and line, exit status 1, and nothing written to
 * the output folder.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';

async function context(t: Parameters<typeof tempDir>[0], dockerfile: string | undefined, files: Record<string, string> = {}): Promise<string> {
  const dir = await tempDir(t);
  const ctx = path.join(dir, 'ctx');
  await fs.mkdir(ctx);
  if (dockerfile !== undefined) await fs.writeFile(path.join(ctx, 'Dockerfile'), dockerfile);
  for (const [name, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(ctx, name)), { recursive: true });
    await fs.writeFile(path.join(ctx, name), content);
  }
  return dir;
}

async function buildFails(t: Parameters<typeof tempDir>[0] & { is: (a: unknown, b: unknown, m?: string) => void; false: (v: boolean, m?: string) => void }, dir: string) {
  const out = path.join(dir, 'out');
  const result = await runCli(['build', path.join(dir, 'ctx'), '--cache-dir', path.join(dir, 'cache'), '-o', `type=oci,dest=${out}`]);
  t.is(result.code, 1, `exit status 1 expected; stderr: ${result.stderr}`);
  t.is(result.stdout, '', 'no digest is printed');
  const exists = await fs.stat(out).then(() => true, () => false);
  t.false(exists, 'nothing is written to the output folder');
  // Plain progress may print the step that failed before the error itself.
  const lines = result.stderr.split('\n');
  return lines.find((l) => l.startsWith('error: ')) ?? lines[0]!;
}

test('a missing Dockerfile names the file it looked for', async (t) => {
  const dir = await context(t, undefined);
  const line = await buildFails(t, dir);
  t.regex(line, /^error: cannot read the Dockerfile .*ctx\/Dockerfile: it does not exist$/);
});

test('a COPY source outside the context is refused with file:line', async (t) => {
  const dir = await context(t, 'FROM scratch\nCOPY ../secret /x\n');
  await fs.writeFile(path.join(dir, 'secret'), 'do not copy me');
  const line = await buildFails(t, dir);
  t.regex(line, /^error: Dockerfile:2:1: COPY source "\.\.\/secret" matches nothing in the build context$/);
});

test('an unknown instruction is reported with file:line and a suggestion', async (t) => {
  const dir = await context(t, 'FROM scratch\nCOPPY a /a\n', { a: 'a' });
  const result = await runCli(['build', path.join(dir, 'ctx'), '--cache-dir', path.join(dir, 'cache'), '-o', `type=oci,dest=${path.join(dir, 'out')}`]);
  t.is(result.code, 1);
  const [first, shown, hint] = result.stderr.split('\n');
  t.is(first, 'error: Dockerfile:2:1: unknown instruction: COPPY');
  t.is(shown, '  | COPPY a /a');
  t.is(hint, '  hint: did you mean COPY?');
  t.false(await fs.stat(path.join(dir, 'out')).then(() => true, () => false));
});

test('usage errors exit with status 2', async (t) => {
  const result = await runCli(['build', '--output', 'type=nope,dest=x', 'fixtures/hello']);
  t.is(result.code, 2);
  t.regex(result.stderr, /unsupported output type "nope"/);
});

test('--help and --version work', async (t) => {
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Usage: lading/);
  const buildHelp = await runCli(['build', '--help']);
  t.is(buildHelp.code, 0);
  t.regex(buildHelp.stdout, /--build-arg KEY=VALUE/);
  const version = await runCli(['--version']);
  t.regex(version.stdout, /^lading \d+\.\d+\.\d+\n$/);
});
