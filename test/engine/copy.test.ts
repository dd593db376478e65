/**
 * COPY and ADD as the engine runs them: from the context, other stages, images, archives, URLs
 * and heredocs; checked on the layers written.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import tar from 'tar-stream';
import zlib from 'node:zlib';
import { tempDir } from '../helpers/cli.ts';
import { buildProject, stepsMade, writeProject, type BuildRun } from '../helpers/build.ts';

interface Listed {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname?: string;
  content?: string;
}

/** The entries of the layer a step made, by path. */
async function layerOf(run: BuildRun, stepText: string): Promise<Map<string, Listed>> {
  const step = run.steps.find((s) => s.text === stepText) ?? run.steps.find((s) => s.text.startsWith(stepText));
  if (!step?.layer) throw new Error(`no layer for ${stepText}: ${run.steps.map((s) => s.text).join(' | ')}`);
  const blob = await run.image.blobs.read({ mediaType: 'x', digest: step.layer, size: 0 });
  const out = new Map<string, Listed>();
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      const e: Listed = { type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, size: h.size };
      if (h.linkname) e.linkname = h.linkname;
      if (h.type === 'file') e.content = Buffer.concat(chunks).toString();
      out.set(h.name.replace(/\/$/, ''), e);
      next();
    });
  });
  extract.end(zlib.gunzipSync(blob));
  await new Promise<void>((r) => extract.on('finish', () => r()));
  return out;
}

test('COPY --from a stage by name and by index, files keep the owner the stage gave them', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: [
      'FROM busybox AS build',
      'COPY --chown=app:app main.js /out/main.js',
      'COPY --chmod=0700 tool /out/bin/tool',
      'FROM scratch',
      'COPY --from=build /out /app',
      'COPY --from=0 /out/main.js /single.js',
      'COPY --from=build /etc/group /etc/passw? /etc/',
    ].join('\n'),
    'main.js': 'main',
    tool: '#!/bin/sh\n',
  });
  const run = await buildProject(p);
  const app = await layerOf(run, 'COPY --from=build /out /app');
  t.like(app.get('app/main.js'), { uid: 1000, gid: 1000, content: 'main' });
  t.like(app.get('app/bin/tool'), { mode: 0o700, content: '#!/bin/sh\n' });
  t.like((await layerOf(run, 'COPY --from=0 /out/main.js /single.js')).get('single.js'), { uid: 1000, content: 'main' });
  const etc = await layerOf(run, 'COPY --from=build /etc/group /etc/passw? /etc/');
  t.regex(etc.get('etc/passwd')?.content ?? '', /^root:x:0:0/);
  t.truthy(etc.get('etc/group'));
});

test('COPY --from a named symlink copies what it points to, under the name given', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox AS b\nFROM scratch\nCOPY --from=b /bin/sh /sh\n' });
  const run = await buildProject(p);
  const layer = await layerOf(run, 'COPY --from=b /bin/sh /sh');
  t.is(layer.get('sh')?.type, 'file');
  t.true((layer.get('sh')?.size ?? 0) > 100_000);
});

test('COPY --from an image named by a build context', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM scratch\nCOPY --from=busybox /etc/passwd /passwd\n' });
  const run = await buildProject(p);
  t.regex((await layerOf(run, 'COPY --from=busybox /etc/passwd /passwd')).get('passwd')?.content ?? '', /app:x:1000/);
});

test('a COPY --from step is cached on the source stage key, and rebuilt when the stage changes', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox AS b\nCOPY x /x\nFROM scratch\nCOPY --from=b /x /y\n', x: '1' });
  await buildProject(p);
  t.deepEqual(stepsMade(await buildProject(p)), []);
  await fs.writeFile(path.join(p.context, 'x'), '2');
  t.deepEqual(stepsMade(await buildProject(p)), ['COPY x /x', 'COPY --from=b /x /y']);
});

test('ADD unpacks a local tar.gz keeping its owners, and copies a non-archive as is', async (t) => {
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await fs.mkdir(path.join(src, 'sub'), { recursive: true });
  await fs.writeFile(path.join(src, 'sub/file.txt'), 'inside');
  await fs.symlink('sub/file.txt', path.join(src, 'link'));
  const p = await writeProject(dir, { Dockerfile: 'FROM scratch\nADD app.tar.gz /opt/\nADD plain.gz /opt/plain.gz\n', 'plain.gz': 'not really gzip' });
  execFileSync('tar', ['-C', src, '--owner=7', '--group=8', '-czf', path.join(p.context, 'app.tar.gz'), '.']);
  const run = await buildProject(p);
  const layer = await layerOf(run, 'ADD app.tar.gz /opt/');
  t.like(layer.get('opt/sub/file.txt'), { uid: 7, gid: 8, content: 'inside' });
  t.like(layer.get('opt/link'), { type: 'symlink', linkname: 'sub/file.txt' });
  t.like((await layerOf(run, 'ADD plain.gz /opt/plain.gz')).get('opt/plain.gz'), { content: 'not really gzip' });
});

test('ADD downloads a URL (mode 0600), checks --checksum, and refuses a mismatch', async (t) => {
  const body = 'downloaded content';
  const server = http.createServer((req, res) => {
    if (req.url === '/files/tool.sh') res.end(body);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}/files/tool.sh`;
  const good = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const p = await writeProject(await tempDir(t), { Dockerfile: `FROM scratch\nADD --checksum=${good} ${url} /dl/\n` });
  const run = await buildProject(p);
  t.like((await layerOf(run, 'ADD ')).get('dl/tool.sh'), { mode: 0o600, content: body });

  const bad = `sha256:${'0'.repeat(64)}`;
  const q = await writeProject(await tempDir(t), { Dockerfile: `FROM scratch\nADD --checksum=${bad} ${url} /dl/\n` });
  const err = await t.throwsAsync(buildProject(q));
  t.regex(err!.message, /does not match --checksum/);

  const missing = await writeProject(await tempDir(t), { Dockerfile: `FROM scratch\nADD http://127.0.0.1:${port}/nope /x\n` });
  const err404 = await t.throwsAsync(buildProject(missing));
  t.regex(err404!.message, /HTTP 404/);
});

test('COPY from heredocs writes inline files', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM scratch\nARG NAME=world\nCOPY <<EOF /greeting.txt\nhello ${NAME}\nEOF\nCOPY <<"RAW" /raw.txt\nkeep ${NAME}\nRAW\n',
  });
  const run = await buildProject(p);
  t.is((await layerOf(run, 'COPY <<EOF /greeting.txt')).get('greeting.txt')?.content, 'hello world\n');
  t.is((await layerOf(run, 'COPY <<"RAW" /raw.txt')).get('raw.txt')?.content, 'keep ${NAME}\n');
});

test('WORKDIR creates the folder once, owned by the current USER', async (t) => {
  const p = await writeProject(await tempDir(t), { Dockerfile: 'FROM busybox\nUSER app\nWORKDIR /work/area\nWORKDIR /tmp\n' });
  const run = await buildProject(p);
  const layer = await layerOf(run, 'WORKDIR /work/area');
  t.like(layer.get('work/area'), { type: 'directory', uid: 1000, gid: 1000 });
  t.true(run.image.config.history?.find((h) => h.created_by === 'WORKDIR /tmp')?.empty_layer, '/tmp exists: no layer');
});

test('a symlink in the context pointing outside it cannot make COPY read the host', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'host-secret'), 'secret');
  const p = await writeProject(dir, { Dockerfile: 'FROM scratch\nCOPY escape /x\nCOPY dir/ /d/\n', escape: { link: '../host-secret' }, 'dir/inner': { link: '/etc/passwd' } });
  const err = await t.throwsAsync(buildProject(p));
  t.regex(err!.message, /COPY source "escape" matches nothing/);
  await fs.rm(path.join(p.context, 'escape'));
  await fs.writeFile(path.join(p.context, 'Dockerfile'), 'FROM scratch\nCOPY dir/ /d/\n');
  const run = await buildProject(p);
  // Inside a copied folder a symlink is copied as a symlink, never followed.
  t.like((await layerOf(run, 'COPY dir/ /d/')).get('d/inner'), { type: 'symlink', linkname: '/etc/passwd' });
});

test('stages that do not depend on each other run at the same time', async (t) => {
  const big = 'x'.repeat(8 * 1024 * 1024);
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM busybox AS a\nCOPY a.bin /a\nFROM busybox AS b\nCOPY b.bin /b\nFROM scratch\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n',
    'a.bin': big,
    'b.bin': big.replace(/x/g, 'y'),
  });
  const run = await buildProject(p);
  const starts = run.events.filter((e) => e.type === 'step-start').map((e) => (e.type === 'step-start' ? e.ref.text : ''));
  const firstDone = run.events.findIndex((e) => e.type === 'step-done');
  const startedBeforeFirstDone = run.events.slice(0, firstDone).filter((e) => e.type === 'step-start').length;
  t.true(startedBeforeFirstDone >= 2, `both independent stages start before either finishes (${starts.join(', ')})`);
});

test('COPY --parents keeps paths (after a /./ pivot), --chown=UID alone uses the UID as the GID', async (t) => {
  const p = await writeProject(await tempDir(t), {
    Dockerfile: 'FROM scratch\nCOPY --parents src/./app/*.js /out/\nCOPY --parents lib/x.txt /keep/\nCOPY --chown=1234 lib/x.txt /owned\n',
    'src/app/a.js': 'a',
    'src/app/b.js': 'b',
    'lib/x.txt': 'x',
  });
  const run = await buildProject(p);
  const pivot = await layerOf(run, 'COPY --parents src/./app/*.js /out/');
  t.truthy(pivot.get('out/app/a.js'));
  t.truthy(pivot.get('out/app/b.js'));
  t.false(pivot.has('out/src'));
  t.truthy((await layerOf(run, 'COPY --parents lib/x.txt /keep/')).get('keep/lib/x.txt'));
  t.like((await layerOf(run, 'COPY --chown=1234 lib/x.txt /owned')).get('owned'), { uid: 1234, gid: 1234 });
});
