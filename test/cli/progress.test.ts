/**
 * `lading build --progress ...` as people and CI see it: the live view in a pseudo-terminal
 * (replayed through a terminal emulator), Ctrl-C in it, NO_COLOR, plain lines and JSON lines
 * checked line by line against a real registry.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runCli, tempDir } from '../helpers/cli.ts';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { testNeeding } from '../helpers/tools.ts';
import { cursorShownAtEnd, replay, runInPty } from './helpers/pty.ts';

const test = testNeeding(['docker-registry', 'script'], 'CLI progress') as TestFn<{ registry: RunningRegistry }>;

test.before(async (t) => {
  t.context = { registry: await startRegistry() };
});
test.after.always(async (t) => {
  await t.context.registry?.stop();
});

const DIGEST = /sha256:[0-9a-f]{64}/;
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/** A context whose first COPY takes a second or so to compress (random bytes do not shrink). */
async function project(dir: string, mib: number): Promise<string> {
  const context = path.join(dir, 'ctx');
  await fs.mkdir(context, { recursive: true });
  await fs.writeFile(path.join(context, 'big.bin'), randomBytes(mib * 1024 * 1024));
  await fs.writeFile(path.join(context, 'app.txt'), 'hello\n');
  await fs.writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /data/big.bin\nENV APP=1\nCOPY app.txt /app.txt\n');
  return context;
}

test('tty: a live view that updates while a layer compresses, then a clean screen with the summary and the cursor shown', async (t) => {
  const dir = await tempDir(t);
  const context = await project(dir, 40);
  const run = await runInPty(['build', context, '--cache-dir', path.join(dir, 'cache'), '-o', `type=oci,dest=${path.join(dir, 'out')}`, '--progress', 'tty']);
  t.is(run.code, 0, run.raw);
  t.true(run.raw.includes('\u001B[?25l'), 'the cursor is hidden while the view is live');
  t.true(cursorShownAtEnd(run.raw), 'and shown again at the end');

  // The view was redrawn as bytes went through the compressor, with a rate once it could tell.
  const counts = new Set([...run.raw.matchAll(/compressing [█░]+ ([\d.]+ [KM]iB)/g)].map((m) => m[1]));
  t.true(counts.size >= 3, `several updates of the running step (${[...counts].join(', ')})`);
  t.regex(run.raw, /compressing [█░]+ [\d.]+ MiB(\/[\d.]+ MiB)? {2}[\d.]+ MiB\/s/);

  const screen = await replay(run.raw);
  const digest = DIGEST.exec(screen.lines.at(-1)!)?.[0];
  t.truthy(digest, screen.lines.join('\n'));
  const expected = [
    /^✔ \[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin {2}[\d.]+s {2}40\.0 MiB$/,
    /^✔ \[stage-0 2\/3\] ENV APP=1 {2}0\.\d\ds$/,
    /^✔ \[stage-0 3\/3\] COPY app\.txt \/app\.txt {2}[\d.]+s {2}\d+ B$/,
    /^→ wrote oci \//,
    new RegExp(`^✔ image ${digest}$`),
    /^ {2}linux\/amd64 · 40\.0 MiB · 2 layers made, 0 cached · [\d.]+s$/,
    new RegExp(`^${digest}$`),
  ];
  t.is(screen.lines.length, expected.length, screen.lines.join('\n'));
  expected.forEach((re, i) => t.regex(screen.lines[i] ?? '', re));
  t.false(screen.lines.some((l) => SPINNER.test(l) || l.includes('compressing')), 'nothing of the live area is left');
  t.false(screen.synchronizedOutput);
});

test('tty: Ctrl-C cancels the build, erases the live view, shows the cursor and exits 130', async (t) => {
  const dir = await tempDir(t);
  const context = await project(dir, 160);
  const cache = path.join(dir, 'cache');
  let typed = false;
  const run = await runInPty(['build', context, '--cache-dir', cache, '--progress', 'tty'], {
    onOutput: (raw, type) => {
      if (!typed && /compressing [█░]+ [1-9][\d.]* MiB/.test(raw)) {
        typed = true;
        type('\u0003');
      }
    },
  });
  t.true(typed, 'Ctrl-C was typed while the layer was compressing');
  t.is(run.code, 130, run.raw);
  t.true(cursorShownAtEnd(run.raw));
  const screen = await replay(run.raw);
  t.is(screen.lines.at(-1), 'error: the build was cancelled');
  t.false(screen.lines.some((l) => SPINNER.test(l)), screen.lines.join('\n'));
  t.deepEqual(await fs.readdir(path.join(cache, 'tmp')), [], 'no temporary files left');
});

test('auto on a terminal with NO_COLOR set: plain lines, not one escape code', async (t) => {
  const dir = await tempDir(t);
  const context = await project(dir, 1);
  const run = await runInPty(['build', context, '--cache-dir', path.join(dir, 'cache')], { env: { NO_COLOR: '1' } });
  t.is(run.code, 0, run.raw);
  t.false(run.raw.includes('\u001B'), JSON.stringify(run.raw.slice(0, 300)));
  t.regex(run.raw, /^\[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin: [\d.]+s \(1\.0 MiB(; 1\.0 MiB hashed at [\d.]+ [KMG]iB\/s)?\)\r$/m);
});

test('tty when stderr is not a terminal: plain lines, no escape codes', async (t) => {
  const dir = await tempDir(t);
  const context = await project(dir, 1);
  const run = await runCli(['build', context, '--cache-dir', path.join(dir, 'cache'), '--progress', 'tty'], { env: { NO_COLOR: '' } });
  t.is(run.code, 0, run.stderr);
  t.false(run.stderr.includes('\u001B'));
  t.regex(run.stderr, /^image sha256:[0-9a-f]{64} \(linux\/amd64, 1\.0 MiB\): 2 layers made, 0 cached; [\d.]+s$/m);
});

/** Lines that must come in this order; lines matching `anywhere` may appear between them. */
function checkLines(t: ExecutionContext<unknown>, text: string, ordered: RegExp[], anywhere: RegExp[]): void {
  const lines = text.trimEnd().split('\n');
  let next = 0;
  for (const line of lines) {
    if (next < ordered.length && ordered[next]!.test(line)) next++;
    else t.true(anywhere.some((re) => re.test(line)), `unexpected line: ${line}`);
  }
  t.is(next, ordered.length, `missing: ${ordered[next]}\n${text}`);
}

test('plain: one line per event, checked line by line, for a first push and a second one that skips every blob', async (t) => {
  const { registry } = t.context;
  const dir = await tempDir(t);
  const context = await project(dir, 2);
  const tag = `${registry.host}/progress/plain:1`;
  const args = ['build', context, '--cache-dir', path.join(dir, 'cache'), '-t', tag, '--push', '--progress', 'plain'];
  const first = await runCli(args);
  t.is(first.code, 0, first.stderr);
  const digest = first.stdout.trim();
  // With --push an SBOM and provenance are attached (docs/attestations.md): more blobs and manifests than the image's own.
  const blob = new RegExp(`^pushed sha256:[0-9a-f]{12} \\((\\d+ B|[\\d.]+ [KM]iB)\\) to ${registry.host}/progress/plain$`);
  const manifest = new RegExp(`^pushed manifest sha256:[0-9a-f]{12} to ${registry.host}/progress/plain$`);
  checkLines(
    t,
    first.stderr,
    [
      /^\[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin$/,
      /^\[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin: [\d.]+s \(2\.0 MiB; 2\.0 MiB hashed at [\d.]+ [KMG]iB\/s\)$/,
      /^\[stage-0 2\/3\] ENV APP=1$/,
      /^\[stage-0 2\/3\] ENV APP=1: 0\.\d\ds$/,
      /^\[stage-0 3\/3\] COPY app\.txt \/app\.txt$/,
      /^\[stage-0 3\/3\] COPY app\.txt \/app\.txt: [\d.]+s \(\d+ B\)$/,
      new RegExp(`^pushed manifest ${digest.slice(0, 19)} to ${registry.host}/progress/plain:1$`),
      new RegExp(`^wrote to registry ${tag}$`),
      new RegExp(`^image ${digest} \\(linux/amd64, 2\\.0 MiB\\): 2 layers made, 0 cached; pushed 2\\.0 MiB \\((\\d+) blobs\\); [\\d.]+s$`),
    ],
    [blob, manifest],
  );
  const pushedBlobs = first.stderr.split('\n').filter((l) => blob.test(l)).length;
  t.true(pushedBlobs >= 3, 'two layers and the config at least');
  t.regex(first.stderr, new RegExp(`pushed 2\\.0 MiB \\(${pushedBlobs} blobs\\)`), 'the summary counts every blob line');

  const second = await runCli(args);
  t.is(second.code, 0, second.stderr);
  t.is(second.stdout, first.stdout);
  const exists = new RegExp(`^exists sha256:[0-9a-f]{12} in ${registry.host}/progress/plain$`);
  checkLines(
    t,
    second.stderr,
    [
      /^\[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin$/,
      /^\[stage-0 1\/3\] COPY big\.bin \/data\/big\.bin: CACHED$/,
      /^\[stage-0 2\/3\] ENV APP=1$/,
      /^\[stage-0 2\/3\] ENV APP=1: 0\.\d\ds$/,
      /^\[stage-0 3\/3\] COPY app\.txt \/app\.txt$/,
      /^\[stage-0 3\/3\] COPY app\.txt \/app\.txt: CACHED$/,
      new RegExp(`^pushed manifest ${digest.slice(0, 19)} to ${registry.host}/progress/plain:1$`),
      /^wrote to registry /,
      new RegExp(`^image ${digest} \\(linux/amd64, 2\\.0 MiB\\): 0 layers made, 2 cached; pushed 0 B \\(0 blobs\\), skipped 2\\.0 MiB \\(${pushedBlobs} already there, 0 mounted\\); [\\d.]+s$`),
    ],
    [exists, manifest],
  );
  t.false(second.stderr.includes('\u001B'));
});

test('json: every stderr line is one JSON object; step events in order; the summary is last and names the digest', async (t) => {
  const { registry } = t.context;
  const dir = await tempDir(t);
  const context = await project(dir, 2);
  const tag = `${registry.host}/progress/json:1`;
  const run = await runCli(['build', context, '--cache-dir', path.join(dir, 'cache'), '-t', tag, '--push', '--progress', 'json']);
  t.is(run.code, 0, run.stderr);
  const digest = run.stdout.trim();
  const lines = run.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
  t.deepEqual(lines[0], { type: 'start', version: 1, elapsedMs: lines[0]!.elapsedMs });
  let last = -1;
  for (const l of lines) {
    t.is(typeof l.elapsedMs, 'number');
    t.true((l.elapsedMs as number) >= last, 'elapsedMs never goes back');
    last = l.elapsedMs as number;
  }
  const steps = lines.filter((l) => l.type === 'step-start' || l.type === 'step-done').map((l) => `${l.type} ${(l.ref as { step: number }).step}`);
  t.deepEqual(steps, ['step-start 1', 'step-done 1', 'step-start 2', 'step-done 2', 'step-start 3', 'step-done 3']);
  const bytes = lines.filter((l) => l.type === 'layer-progress' && (l.ref as { step: number }).step === 1).reduce((n, l) => n + (l.bytes as number), 0);
  t.true(bytes >= 2 * 1024 * 1024, `the layer bytes add up (${bytes})`);
  const uploads = lines.filter((l) => l.type === 'registry' && (l.event as { type: string }).type === 'blob-uploaded');
  t.true(uploads.length >= 3, 'two layers and a config at least (attestations add more)');
  t.like(lines.at(-1), { type: 'summary', command: 'build', digest, tags: [tag], layersMade: 2, layersCached: 0, blobsPushed: uploads.length, platform: 'linux/amd64' });
});

test('json: a failure is the last line, with its code and exit status, and nothing but JSON is printed', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY --nope a /a\n');
  const run = await runCli(['build', dir, '--cache-dir', path.join(dir, 'cache'), '--progress', 'json']);
  t.is(run.code, 1);
  const lines = run.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(lines.at(-1), { type: 'error', code: 'DOCKERFILE_INVALID', exitStatus: 1 });
  t.regex(String(lines.at(-1)!.text), /Dockerfile:2/);
  t.is(run.stdout, '');
});

test('an unknown --progress mode is a usage error', async (t) => {
  const run = await runCli(['build', '.', '--progress', 'fancy']);
  t.is(run.code, 2);
  t.regex(run.stderr, /unsupported --progress "fancy"[\s\S]*auto, tty, plain, json, quiet/);
});
