/**
 * The GitHub Action (action.yml) and its example workflow, without GitHub: the YAML has the shape
 * GitHub expects, every input is used and every use is declared, inputs reach the script only
 * through the environment, the flags it passes exist, the docs install lading the same way — and
 * the build step's script itself runs here, as the runner would run it, against a registry.
 */
import type { TestFn } from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { BUILD_OPTIONS } from '../../src/cli/options.ts';
import { REPO_ROOT } from '../helpers/busybox.ts';
import { tempDir } from '../helpers/cli.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['docker-registry'], 'GitHub Action') as TestFn<{ registry: RunningRegistry }>;

interface Step {
  id?: string;
  name?: string;
  shell?: string;
  run?: string;
  uses?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Action {
  name: string;
  description: string;
  inputs: Record<string, { description: string; default?: string; required?: boolean }>;
  outputs: Record<string, { description: string; value: string }>;
  runs: { using: string; steps: Step[] };
}

const readYaml = async <T>(file: string): Promise<T> => YAML.parse(await fs.readFile(path.join(REPO_ROOT, file), 'utf8')) as T;

test.before(async (t) => {
  t.context = { registry: await startRegistry() };
});
test.after.always(async (t) => {
  await t.context.registry?.stop();
});

test('action.yml is a composite action GitHub can run: inputs described, outputs from a real step, bash everywhere', async (t) => {
  const action = await readYaml<Action>('action.yml');
  t.truthy(action.name);
  t.truthy(action.description);
  t.is(action.runs.using, 'composite');
  for (const [name, input] of Object.entries(action.inputs)) t.truthy(input.description, `input ${name} is described`);
  for (const required of ['context', 'file', 'tags', 'push', 'platforms', 'build-args', 'cache-repo']) t.truthy(action.inputs[required], `input ${required}`);
  const ids = new Set(action.runs.steps.map((s) => s.id).filter(Boolean));
  for (const [name, output] of Object.entries(action.outputs)) {
    const m = /^\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}$/.exec(output.value);
    t.truthy(m, `output ${name} names a step output`);
    t.true(ids.has(m![1]!), `output ${name} comes from step ${m![1]}`);
  }
  t.truthy(action.outputs.digest);
  for (const step of action.runs.steps) if (step.run) t.is(step.shell, 'bash', `${step.name} says its shell (composite actions must)`);
});

test('every input is used, every use is declared, and none is pasted into a script', async (t) => {
  const action = await readYaml<Action>('action.yml');
  const text = await fs.readFile(path.join(REPO_ROOT, 'action.yml'), 'utf8');
  const used = new Set([...text.matchAll(/\$\{\{\s*inputs\.([\w-]+)\s*\}\}/g)].map((m) => m[1]!));
  t.deepEqual([...used].sort(), Object.keys(action.inputs).sort());
  for (const step of action.runs.steps) t.false(/\$\{\{/.test(step.run ?? ''), `${step.name}: inputs reach the script through env only`);
});

test('the flags the action passes exist, and the docs install lading as the action does', async (t) => {
  const action = await readYaml<Action>('action.yml');
  const script = action.runs.steps.find((s) => s.id === 'build')!.run!;
  const flags = new Set([...script.matchAll(/(?:^|[\s(])--([a-z][a-z-]+)/g)].map((m) => m[1]!));
  const known = new Set(BUILD_OPTIONS.map((o) => o.name));
  for (const flag of flags) t.true(known.has(flag), `--${flag} is a lading build option`);
  const install = action.runs.steps.find((s) => s.name === 'Install lading')!.run!;
  const recipe = await fs.readFile(path.join(REPO_ROOT, 'docs', 'recipes', 'github-actions.md'), 'utf8');
  t.true(install.includes('npm install --global --no-audit --no-fund "lading@$LADING_VERSION"'));
  t.true(recipe.includes('npm install --global --no-audit --no-fund lading'), 'the recipe shows the same install command');
  t.true(recipe.includes('lading build --progress plain'), 'and the same build command');
});

test('the example workflow uses the action with declared inputs only', async (t) => {
  const action = await readYaml<Action>('action.yml');
  const workflow = await readYaml<{ on: unknown; permissions: Record<string, string>; jobs: Record<string, { 'runs-on': string; steps: Step[] }> }>('.github/workflows/example.yml');
  t.truthy(workflow.on);
  t.is(workflow.permissions.packages, 'write');
  const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
  const uses = steps.filter((s) => s.uses === './');
  t.is(uses.length, 1);
  for (const input of Object.keys(uses[0]!.with ?? {})) t.truthy(action.inputs[input], `with: ${input} is an input of the action`);
  t.regex(JSON.stringify(steps), /steps\.image\.outputs\.digest/);
});

function bash(script: string, env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-e', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
  });
}

test("the build step's script runs as the runner would run it: tags, build args, push, cache repo, digest output", async (t) => {
  const { registry } = t.context;
  const action = await readYaml<Action>('action.yml');
  const step = action.runs.steps.find((s) => s.id === 'build')!;
  const dir = await tempDir(t, 'lading-action-');
  const context = path.join(dir, 'app');
  await fs.mkdir(context);
  await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nARG GREETING\nCOPY hello.txt /hello.txt\nLABEL greeting=$GREETING\n');
  await fs.writeFile(path.join(context, 'hello.txt'), 'hi');
  const bin = path.join(dir, 'bin');
  await fs.mkdir(bin);
  await fs.symlink(path.join(REPO_ROOT, 'bin', 'lading'), path.join(bin, 'lading'));
  const outputFile = path.join(dir, 'github-output');
  await fs.writeFile(outputFile, '');
  // What GitHub does: each `${{ inputs.X }}` in the step's env is replaced by the input's value.
  const inputs: Record<string, string> = {
    context: 'app',
    tags: `${registry.host}/action/app:1, ${registry.host}/action/app:latest`,
    push: 'true',
    'build-args': 'GREETING=hello world\n\n',
    'cache-repo': `${registry.host}/action/cache`,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, RUNNER_TEMP: dir, GITHUB_OUTPUT: outputFile, NO_COLOR: '1' };
  for (const [k, v] of Object.entries(step.env ?? {})) {
    env[k] = v.replace(/\$\{\{\s*inputs\.([\w-]+)\s*\}\}/g, (_, name: string) => inputs[name] ?? action.inputs[name]?.default ?? '');
  }
  const r = await bash(step.run!, env, dir);
  t.is(r.code, 0, r.output);
  const outputs = Object.fromEntries((await fs.readFile(outputFile, 'utf8')).trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  t.regex(outputs.digest ?? '', /^sha256:[0-9a-f]{64}$/);
  const metadata = JSON.parse(await fs.readFile(outputs.metadata!, 'utf8')) as Record<string, unknown>;
  t.is(metadata['containerimage.digest'], outputs.digest);
  for (const tag of ['1', 'latest']) {
    const res = await fetch(`${registry.url}/v2/action/app/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } });
    t.is(res.headers.get('docker-content-digest'), outputs.digest, `tag ${tag}`);
  }
  t.regex(r.output, /cache .*action\/cache.*: \d+ entries written/);
  t.regex(r.output, /^image sha256:[0-9a-f]{64} .*layers? made/m);
});
