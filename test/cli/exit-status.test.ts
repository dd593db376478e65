/**
 * Exit statuses are a contract with scripts: the values, their documentation in docs/cli.md, and
 * real runs of bin/lading that end in each of them.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { EXIT, exitStatusFor } from '../../src/cli/main.ts';
import { ERROR_CODES } from '../../src/errors.ts';
import { REPO_ROOT } from '../helpers/busybox.ts';
import { runCli, tempDir } from '../helpers/cli.ts';

test('the statuses are the documented ones, and docs/cli.md lists exactly them', async (t) => {
  t.deepEqual({ ...EXIT }, { OK: 0, BUILD: 1, USAGE: 2, REGISTRY: 3, INTERNAL: 70, INTERRUPTED: 130 });
  const doc = await fs.readFile(path.join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Exit statuses'), doc.indexOf('## Environment'));
  const documented = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
  t.deepEqual(documented, Object.values(EXIT));
  t.is(exitStatusFor(ERROR_CODES.INTERNAL), 70);
  t.is(exitStatusFor(ERROR_CODES.REGISTRY_AUTH), 3);
  t.is(exitStatusFor(ERROR_CODES.RUN_FAILED), 1);
});

test('0 on success, 2 for a usage error, 1 for a build error', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
  await fs.writeFile(path.join(dir, 'a.txt'), 'a');
  t.is((await runCli(['build', dir, '--cache-dir', path.join(dir, 'cache'), '-q'])).code, 0);
  t.is((await runCli(['build', dir, '--no-such-flag'])).code, 2);
  t.is((await runCli(['frobnicate'])).code, 2);
  t.is((await runCli(['build', dir, '--push'])).code, 2, '--push without a tag');
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY missing.txt /m\n');
  const failed = await runCli(['build', dir, '--cache-dir', path.join(dir, 'cache')]);
  t.is(failed.code, 1);
  t.regex(failed.stderr, /^error: /m);
});

test('3 for a malformed reference and for a registry error answer', async (t) => {
  t.is((await runCli(['inspect', 'Not/A_Valid:Reference!'])).code, 3);
  // A registry that knows no manifest.
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/v2/') return res.end('{}');
    res.statusCode = 404;
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const r = await runCli(['inspect', `127.0.0.1:${(server.address() as AddressInfo).port}/team/missing:1`]);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /team\/missing/);
});

test('130 when SIGTERM arrives mid-build, with the temporary files gone', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'big.bin'), randomBytes(96 * 1024 * 1024));
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
  const cache = path.join(dir, 'cache');
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'lading'), 'build', dir, '--cache-dir', cache, '--progress', 'plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && stderr.includes('COPY big.bin /big.bin\n')) {
      sent = true;
      child.kill('SIGTERM');
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 130, stderr);
  t.regex(stderr, /error: the build was cancelled/);
  t.deepEqual(await fs.readdir(path.join(cache, 'tmp')), []);
});
