/**
 * The progress renderers fed synthetic events on a fake clock: what the live frame shows (step
 * lines with compression rate, byte bars for transfers, the status line), how plain and json
 * thin byte progress, and which mode runs where.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import type { BuildEvent, BuildResult, StepRef } from '../../src/index.ts';
import { canDrawOn, resolveMode } from '../../src/cli/progress.ts';
import { ProgressModel, RateMeter } from '../../src/cli/render/model.ts';
import { fit, frame, ttyRenderer } from '../../src/cli/render/tty.ts';
import { plainRenderer } from '../../src/cli/render/plain.ts';
import { jsonRenderer } from '../../src/cli/render/json.ts';

const MiB = 1024 * 1024;
const ref: StepRef = { stage: 0, step: 2, total: 3, text: 'COPY big.bin /data/', line: 2 };
const registry = { registry: '127.0.0.1:5000', repository: 'team/app', digest: `sha256:${'ab'.repeat(32)}` };

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function sink(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
}

const stripStyles = (s: string): string => s.replace(/\u001B\[[0-9;?]*[A-Za-z]/g, '');

test('the rate meter measures over its window and starts again when a counter goes back', (t) => {
  const m = new RateMeter(3000);
  m.update(0, 0);
  t.is(m.rate(), 0, 'no rate from one sample');
  m.update(1000, 10 * MiB);
  t.is(m.rate(), 10 * MiB);
  m.update(2000, 30 * MiB);
  t.is(m.rate(), 15 * MiB);
  m.update(6000, 70 * MiB); // samples older than 3 s drop out: 40 MiB over the last 4 s
  t.is(m.rate(), 10 * MiB);
  m.update(6500, 1 * MiB); // a retry restarts the upload
  t.is(m.rate(), 0);
});

test('the live frame: a running step with bytes compressed and their rate, a byte bar per upload, a status line', (t) => {
  const c = clock();
  const model = new ProgressModel(c.now);
  model.apply({ type: 'step-start', ref });
  for (let i = 0; i < 5; i++) {
    c.advance(250);
    model.apply({ type: 'layer-progress', ref, bytes: 10 * MiB, compressed: 0, bytesPerSecond: 0 });
  }
  model.apply({ type: 'registry', event: { type: 'blob-upload-progress', ...registry, sent: 0, size: 40 * MiB, bytesPerSecond: 0 } });
  c.advance(1000);
  model.apply({ type: 'registry', event: { type: 'blob-upload-progress', ...registry, sent: 20 * MiB, size: 40 * MiB, bytesPerSecond: 0 } });
  const lines = frame(model, 160, 30).map(stripStyles);
  t.is(lines.length, 3);
  t.regex(lines[0]!, /^. \[stage-0 2\/3\] COPY big\.bin \/data\/ +compressing [█░]{20} 50\.0 MiB  40\.0 MiB\/s  2\.25s$/);
  t.regex(lines[1]!, /^↑ push sha256:abababababab █{10}░{10} 20\.0 MiB\/40\.0 MiB  20\.0 MiB\/s  127\.0\.0\.1:5000\/team\/app$/);
  t.is(lines[2]!, '  2.25s', 'no step has finished yet: only the time');

  model.apply({ type: 'registry', event: { type: 'blob-uploaded', ...registry, size: 40 * MiB, method: 'monolithic' } });
  model.apply({ type: 'step-done', ref, ms: 2250, layer: 'sha256:x', layerBytes: 50 * MiB, emptyLayer: false });
  const after = frame(model, 160, 30).map(stripStyles);
  t.deepEqual(after.length, 1, 'finished work leaves the live area');
  t.regex(after[0]!, /1 layer made · 0 cached · ↑ 40\.0 MiB/);
});

test('the live frame never wraps or outgrows the terminal', (t) => {
  const c = clock();
  const model = new ProgressModel(c.now);
  for (let i = 1; i <= 40; i++) model.apply({ type: 'step-start', ref: { ...ref, stage: i, text: `RUN ${'x'.repeat(300)}` } });
  const lines = frame(model, 60, 12);
  t.is(lines.length, 11, 'rows - 1 lines: ten items (the last says how many more) and the status line');
  for (const line of lines) t.true(stripStyles(line).length < 60, stripStyles(line));
  t.regex(stripStyles(lines[9]!), /… and 31 more/);
  t.is(stripStyles(fit([[undefined, 'abcdefghij']], 6)), 'abcd…');
});

const result = (over: Partial<BuildResult> = {}): BuildResult =>
  ({
    digest: `sha256:${'cd'.repeat(32)}`,
    size: 3 * MiB,
    tags: ['127.0.0.1:5000/team/app:1'],
    platform: 'linux/amd64',
    steps: [
      { stage: 0, text: 'COPY a /a', cached: true, layer: 'sha256:1', ms: 1 },
      { stage: 0, text: 'COPY big.bin /data/', cached: false, layer: 'sha256:2', ms: 2250 },
    ],
    cacheExported: [],
    ...over,
  }) as BuildResult;

test('the tty renderer prints finished steps above the live area and ends with the summary, the live area erased and the cursor shown', (t) => {
  const c = clock();
  const out = sink();
  const r = ttyRenderer(out.stream, { now: c.now, frameMs: 60_000 });
  r.onEvent({ type: 'step-start', ref });
  r.onEvent({ type: 'step-done', ref, ms: 2250, layer: 'sha256:2', layerBytes: 3 * MiB, emptyLayer: false });
  r.onEvent({ type: 'registry', event: { type: 'blob-skipped', ...registry, size: 2 * MiB } });
  r.onEvent({ type: 'registry', event: { type: 'blob-uploaded', ...registry, size: 3 * MiB, method: 'monolithic' } });
  c.advance(3000);
  r.done({ kind: 'build', result: result() });
  const text = stripStyles(out.text());
  t.regex(text, /✔ \[stage-0 2\/3\] COPY big\.bin \/data\/ {2}2\.25s {2}3\.0 MiB/);
  const tail = text.slice(text.lastIndexOf('✔ image'));
  t.is(
    tail,
    `✔ image sha256:${'cd'.repeat(32)}\n  linux/amd64 · 3.0 MiB · 1 layer made, 1 cached · 3.00s\n  pushed 3.0 MiB (1 blob), skipped 2.0 MiB (1 already there, 0 mounted)\n  127.0.0.1:5000/team/app:1\n`,
  );
});

test('plain: one line per event, byte progress at most once per interval, the summary line last', (t) => {
  const c = clock();
  const out = sink();
  const r = plainRenderer(out.stream, { now: c.now, intervalMs: 10_000 });
  const events: BuildEvent[] = [{ type: 'step-start', ref }];
  for (let i = 0; i < 24; i++) events.push({ type: 'layer-progress', ref, bytes: 5 * MiB, compressed: 0, bytesPerSecond: 0 });
  for (const e of events) {
    c.advance(1000);
    r.onEvent(e);
  }
  r.onEvent({ type: 'step-done', ref, ms: 24_000, layer: 'sha256:2', layerBytes: 100 * MiB, emptyLayer: false });
  r.done({ kind: 'build', result: result({ tags: [] }) });
  const lines = out.text().trimEnd().split('\n');
  t.deepEqual(lines, [
    '[stage-0 2/3] COPY big.bin /data/',
    '[stage-0 2/3] COPY big.bin /data/: 55.0 MiB hashed (5.0 MiB/s)',
    '[stage-0 2/3] COPY big.bin /data/: 105.0 MiB hashed (5.0 MiB/s)',
    '[stage-0 2/3] COPY big.bin /data/: 24.00s (100.0 MiB; 120.0 MiB hashed at 5.0 MiB/s)',
    `image sha256:${'cd'.repeat(32)} (linux/amd64, 3.0 MiB): 1 layer made, 1 cached; 25.0s`,
  ]);
  t.false(out.text().includes('\u001B'), 'no escape codes');
});

test('json: every line is an object with elapsedMs; layer bytes are thinned but their sum stays exact; the summary is last', (t) => {
  const c = clock();
  const out = sink();
  const r = jsonRenderer(out.stream, { now: c.now, intervalMs: 250 });
  r.onEvent({ type: 'step-start', ref });
  for (let i = 0; i < 100; i++) {
    c.advance(10);
    r.onEvent({ type: 'layer-progress', ref, bytes: MiB, compressed: 0, bytesPerSecond: 0 });
  }
  r.onEvent({ type: 'step-done', ref, ms: 1000, layer: 'sha256:2', layerBytes: 60 * MiB, emptyLayer: false });
  r.done({ kind: 'build', result: result() });
  const lines = out.text().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines[0], { type: 'start', version: 1, elapsedMs: 0 });
  const progress = lines.filter((l) => l.type === 'layer-progress');
  t.true(progress.length >= 4 && progress.length <= 6, `${progress.length} progress lines for 100 events over 1 s`);
  t.is(progress.reduce((n, l) => n + (l.bytes as number), 0), 100 * MiB);
  for (const l of lines) t.is(typeof l.elapsedMs, 'number');
  const summary = lines.at(-1)!;
  t.like(summary, { type: 'summary', command: 'build', digest: `sha256:${'cd'.repeat(32)}`, layersMade: 1, layersCached: 1, size: 3 * MiB });
});

test('json reports a failure as its last line and tells the CLI not to print it again', (t) => {
  const out = sink();
  const r = jsonRenderer(out.stream);
  const err = Object.assign(new Error('boom'), {});
  t.true(r.fail(err, 70));
  const last = JSON.parse(out.text().trimEnd().split('\n').at(-1)!) as Record<string, unknown>;
  t.like(last, { type: 'error', code: 'INTERNAL', message: 'boom', exitStatus: 70 });
});

test('escape codes only on a terminal without NO_COLOR or TERM=dumb; auto and tty fall back to plain elsewhere', (t) => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  t.true(canDrawOn(tty, {}));
  t.false(canDrawOn(tty, { NO_COLOR: '1' }));
  t.true(canDrawOn(tty, { NO_COLOR: '' }), 'an empty NO_COLOR does not count (no-color.org)');
  t.false(canDrawOn(tty, { TERM: 'dumb' }));
  t.false(canDrawOn(pipe, {}));
  t.is(resolveMode('auto', tty, {}), 'tty');
  t.is(resolveMode('auto', pipe, {}), 'plain');
  t.is(resolveMode('tty', pipe, {}), 'plain');
  t.is(resolveMode('tty', tty, { NO_COLOR: '1' }), 'plain');
  t.is(resolveMode('json', tty, {}), 'json');
  t.is(resolveMode('quiet', tty, {}), 'quiet');
  t.is(resolveMode('plain', tty, {}), 'plain');
});
