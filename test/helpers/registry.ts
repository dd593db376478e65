/**
 * A real CNCF Distribution registry (Debian's `docker-registry`) on a free loopback port, with
 * its config and storage in a temporary folder. Tests start one per suite and stop it at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestFn } from 'ava';

export interface RegistryOptions {
  /** Extra YAML placed under `auth:` (htpasswd or token). */
  auth?: string;
  /** TLS certificate and key files; the registry then serves https. */
  tls?: { certificate: string; key: string };
  /** Extra top-level YAML appended to the config. */
  extraConfig?: string;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
  logs(): string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-registry-'));
  const dataDir = path.join(dir, 'data');
  await fs.mkdir(dataDir);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dataDir}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.tls ? ['  tls:', `    certificate: ${options.tls.certificate}`, `    key: ${options.tls.key}`] : []),
      ...(options.auth ? ['auth:', ...options.auth.split('\n').map((l) => `  ${l}`)] : []),
      ...(options.extraConfig ? [options.extraConfig] : []),
      '',
    ].join('\n');
    const configFile = path.join(dir, 'config.yml');
    await fs.writeFile(configFile, config);
    const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const scheme = options.tls ? 'https' : 'http';
    const url = `${scheme}://127.0.0.1:${port}`;
    const ready = await waitReady(child, url);
    if (!ready) {
      child.kill('SIGKILL');
      if (attempt < 3 && /address already in use/.test(output)) continue;
      throw new Error(`docker-registry did not start on port ${port}:\n${output}`);
    }
    return {
      host: `127.0.0.1:${port}`,
      port,
      url,
      dataDir,
      logs: () => output,
      stop: async () => {
        await stopChild(child);
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  }
}

/** Wait until `GET /v2/` answers (200, or 401 when auth is on). */
async function waitReady(child: ChildProcess, url: string): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const status = await new Promise<number>((resolve) => {
      const get = url.startsWith('https') ? https.get : http.get;
      const req = get(`${url}/v2/`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * A registry that already holds an image from an OCI layout folder (`DIR:TAG`) under `ref`
 * (`REPOSITORY:TAG`, the registry's host is prepended): the usual start of a suite that builds
 * FROM a registry image.
 */
export async function startRegistryWith(layout: string, ref: string): Promise<{ registry: RunningRegistry; image: string }> {
  const registry = await startRegistry();
  const image = `${registry.host}/${ref}`;
  try {
    const { push } = await import('../../src/index.ts');
    await push(layout, [image]);
  } catch (err) {
    await registry.stop();
    throw err;
  }
  return { registry, image };
}

/** What a suite built on `registryWithBase` finds in `t.context`. */
export interface RegistryBaseContext {
  registry: RunningRegistry;
  /** The base image's full reference in that registry. */
  base: string;
}

/**
 * For a suite that builds FROM a registry image: before its tests, start a registry holding the
 * image of `layout()` (`DIR:TAG`) as `ref`; after them, stop it.
 */
export function registryWithBase(test: TestFn<RegistryBaseContext>, layout: () => Promise<string>, ref: string): void {
  test.before(async (t) => {
    const { registry, image } = await startRegistryWith(await layout(), ref);
    t.context = { registry, base: image };
  });
  test.after.always(async (t) => {
    await t.context.registry?.stop();
  });
}
