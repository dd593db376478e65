/**
 * The published declarations work for a consumer: `npm run build` emits dist/index.d.ts, and a
 * small TypeScript project importing 'lading' type-checks against dist/ with tsc — while a wrong
 * use of the same API fails, which proves the types are real and not `any`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';

const run = promisify(execFile);

const GOOD = `import { build, push, isLadingError, type BuildEvent, type BuildOptions, type BuildResult, type StepReport } from 'lading';

const onEvent = (e: BuildEvent): void => {
  if (e.type === 'step-done') console.log(e.ref.text, e.ms, e.layerBytes ?? 0);
  if (e.type === 'registry' && e.event.type === 'blob-upload-progress') console.log(e.event.sent / e.event.size);
};
const options: BuildOptions = { context: '.', tags: ['example.com/app:1'], push: true, onEvent, signal: AbortSignal.timeout(60_000) };
export async function main(): Promise<string> {
  try {
    const result: BuildResult = await build(options);
    const cached: StepReport[] = result.steps.filter((s) => s.cached);
    await push('out', ['example.com/app:2']);
    return \`\${result.digest} \${cached.length} \${result.pushed[0]?.bytesUploaded ?? 0}\`;
  } catch (err) {
    if (isLadingError(err)) return err.code;
    throw err;
  }
}
`;

const BAD = `import { build } from 'lading';
export async function main(): Promise<number> {
  const result = await build({ context: '.', compression: 'brotli' });
  return result.digest;
}
`;

test('a consumer type-checks against dist/*.d.ts; a wrong use fails', async (t) => {
  await fs.access(path.join(REPO_ROOT, 'dist', 'index.d.ts'));
  const dir = await tempDir(t, 'lading-consumer-');
  await fs.mkdir(path.join(dir, 'node_modules'));
  await fs.symlink(REPO_ROOT, path.join(dir, 'node_modules', 'lading'));
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  await fs.writeFile(path.join(dir, 'good.ts'), GOOD);
  await fs.writeFile(path.join(dir, 'bad.ts'), BAD);
  const tsconfig = (file: string): string =>
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')] },
      files: [file],
    });
  await fs.writeFile(path.join(dir, 'tsconfig.good.json'), tsconfig('good.ts'));
  await fs.writeFile(path.join(dir, 'tsconfig.bad.json'), tsconfig('bad.ts'));
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

  const good = await run(process.execPath, [tsc, '-p', 'tsconfig.good.json'], { cwd: dir }).then(() => '', (err: { stdout: string }) => err.stdout);
  t.is(good, '', 'the consumer compiles');

  const bad = await run(process.execPath, [tsc, '-p', 'tsconfig.bad.json'], { cwd: dir }).then(() => '', (err: { stdout: string }) => err.stdout);
  t.regex(bad, /bad\.ts\(3,\d+\): error TS2322: Type '"brotli"' is not assignable/);
  t.regex(bad, /bad\.ts\(4,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
});
