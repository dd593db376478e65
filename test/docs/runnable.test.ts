/**
 * Every fenced block marked `runnable` in docs/ is executed, in order, one folder per page, the
 * way a reader would run them: `sh` blocks with bash (errexit, pipefail), `ts` blocks as ES
 * modules through tsx, `cjs` blocks with plain node. `lading` resolves to this checkout (the
 * package and its bin), REGISTRY is a harness registry and BASE_IMAGE a busybox image in it.
 */
import type { TestFn } from 'ava';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT, busyboxImage } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';
import { startRegistryWith, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['docker-registry'], 'runnable docs') as TestFn<{ registry: RunningRegistry; base: string }>;

export interface Block {
  lang: 'sh' | 'ts' | 'cjs';
  code: string;
  line: number;
}

/** The runnable blocks of a Markdown text: ```sh runnable, ```ts runnable, ```cjs runnable. */
export function runnableBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const re = /^```(\w+)[ \t]+runnable[^\n]*\n([\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(re)) {
    const lang = m[1]!;
    if (lang !== 'sh' && lang !== 'ts' && lang !== 'cjs') throw new Error(`a runnable block must be sh, ts or cjs, not ${lang}`);
    blocks.push({ lang, code: m[2]!, line: markdown.slice(0, m.index).split('\n').length });
  }
  return blocks;
}

/** Synchronous: ava wants every test declared before the file's first await. */
function docsWithRunnableBlocks(): string[] {
  const dir = path.join(REPO_ROOT, 'docs');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).sort();
  return files.filter((f) => runnableBlocks(readFileSync(path.join(dir, f), 'utf8')).length > 0);
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

/** A folder where `import 'lading'`, `npx lading` and `lading` all mean this checkout. */
async function workspace(dir: string): Promise<string> {
  await fs.mkdir(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  await fs.symlink(REPO_ROOT, path.join(dir, 'node_modules', 'lading'));
  await fs.symlink(path.join(REPO_ROOT, 'bin', 'lading'), path.join(dir, 'node_modules', '.bin', 'lading'));
  await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'docs-example', private: true, type: 'module' }));
  return path.join(dir, 'node_modules', '.bin');
}

test.before(async (t) => {
  const { registry, image: base } = await startRegistryWith(`${(await busyboxImage()).layoutDir}:latest`, 'library/busybox:1.36');
  t.context = { registry, base };
});
test.after.always(async (t) => {
  await t.context.registry?.stop();
});

test('runnable blocks are found where the docs promise them', async (t) => {
  const pages = docsWithRunnableBlocks();
  for (const page of ['getting-started.md', 'library.md']) t.true(pages.includes(page), page);
  const library = runnableBlocks(await fs.readFile(path.join(REPO_ROOT, 'docs', 'library.md'), 'utf8'));
  t.true(library.some((b) => b.lang === 'cjs'), 'the CommonJS example is executed from a .cjs file');
  t.deepEqual(runnableBlocks('```sh runnable\necho hi\n```\n\n```sh\nnot this\n```\n'), [{ lang: 'sh', code: 'echo hi\n', line: 1 }]);
});

for (const page of docsWithRunnableBlocks()) {
  test(`docs/${page}: every runnable block succeeds, in order`, async (t) => {
    const { registry, base } = t.context;
    const dir = await tempDir(t, 'lading-docs-');
    const bin = await workspace(dir);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      REGISTRY: `${registry.host}/docs`,
      BASE_IMAGE: base,
      LADING_CACHE_DIR: path.join(dir, '.cache'),
      NO_COLOR: '1',
      npm_config_yes: 'false',
      npm_config_offline: 'true',
    };
    const blocks = runnableBlocks(await fs.readFile(path.join(REPO_ROOT, 'docs', page), 'utf8'));
    for (const [i, block] of blocks.entries()) {
      const file = path.join(dir, `block-${i + 1}.${block.lang === 'sh' ? 'sh' : block.lang === 'ts' ? 'mts' : 'cjs'}`);
      await fs.writeFile(file, block.code);
      const r =
        block.lang === 'sh'
          ? await run('bash', ['-eo', 'pipefail', file], dir, env)
          : block.lang === 'ts'
            ? await run(process.execPath, ['--import', import.meta.resolve('tsx'), file], dir, env)
            : await run(process.execPath, [file], dir, env);
      t.is(r.code, 0, `docs/${page}:${block.line} (${block.lang}) failed:\n${block.code}\n--- output ---\n${r.output}`);
      if (r.code !== 0) return;
    }
    t.log(`${blocks.length} blocks ran`);
  });
}
