/**
 * A Debian bookworm minbase root made by debootstrap from the mirror apt already uses, cached under
 * .cache/test-images keyed by what decides its content apart from the day (suite, variant,
 * architecture, mirror), with the root kept for `dpkg-query --admindir` and a gzip layer tar of it
 * made by GNU tar so the scanner reads a layer no lading code wrote.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { CACHE_ROOT } from '../../helpers/busybox.ts';

const run = promisify(execFile);

export const SUITE = 'bookworm';
export const VARIANT = 'minbase';

export interface DebootstrapImage {
  /** The unpacked root (for dpkg-query). */
  root: string;
  /** A gzip tar of the root, as an image layer. */
  layer: string;
}

/** The Debian mirror apt is configured with (deb822 .sources first, then one-line sources.list). */
export function aptMirror(): string {
  const dir = '/etc/apt/sources.list.d';
  const candidates: string[] = [];
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.sources')) continue;
      for (const stanza of readFileSync(path.join(dir, name), 'utf8').split(/\n\s*\n/)) {
        const field = (key: string): string | undefined => new RegExp(`^${key}:\\s*(.+)$`, 'mi').exec(stanza)?.[1]?.trim();
        if (field('Enabled') === 'no') continue;
        const suites = field('Suites')?.split(/\s+/) ?? [];
        const uri = field('URIs')?.split(/\s+/)[0];
        if (uri && suites.includes(SUITE)) candidates.push(uri);
      }
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    for (const line of readFileSync('/etc/apt/sources.list', 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
      if (m && m[2] === SUITE) candidates.push(m[1]!);
    }
  }
  const mirror = candidates.find((u) => !/security/.test(u));
  if (!mirror) throw new Error(`no apt source for ${SUITE} found in /etc/apt`);
  return mirror;
}

function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/** Build (once) or reuse the cached root and layer. Takes about 40 s the first time. */
export async function debootstrapImage(): Promise<DebootstrapImage> {
  const mirror = aptMirror();
  const key = createHash('sha256').update(`${SUITE}\0${VARIANT}\0${hostArch()}\0${mirror}\0v1`).digest('hex').slice(0, 16);
  const dir = path.join(CACHE_ROOT, `debootstrap-${SUITE}-${VARIANT}-${key}`);
  const image = { root: path.join(dir, 'root'), layer: path.join(dir, 'layer-v2.tar.gz') };
  if (!existsSync(path.join(dir, 'done'))) await bootstrap(dir, mirror);
  if (!existsSync(image.layer)) await tarLayer(image.root, image.layer);
  return image;
}

async function bootstrap(dir: string, mirror: string): Promise<void> {

  await fs.mkdir(CACHE_ROOT, { recursive: true });
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.mkdir(tmp, { recursive: true });
  try {
    await run('debootstrap', [`--variant=${VARIANT}`, `--arch=${hostArch()}`, SUITE, path.join(tmp, 'root'), mirror], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60 * 1000,
    });
    await fs.writeFile(path.join(tmp, 'done'), `${SUITE} ${VARIANT} ${mirror}\n`);
    try {
      await fs.rename(tmp, dir);
    } catch (err) {
      // Another test run finished first; its copy is as good as ours.
      if (!existsSync(path.join(dir, 'done'))) throw err;
      await fs.rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** The root as an image layer would hold it: without apt's downloaded archives and lists (as Debian's images). */
async function tarLayer(root: string, dest: string): Promise<void> {
  const tmp = `${dest}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await run(
      'tar',
      ['-C', root, '--numeric-owner', '--sort=name', '--exclude=./var/cache/apt/archives/*.deb', '--exclude=./var/lib/apt/lists/*', '-czf', tmp, '.'],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await fs.rename(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** The sha256 of a layer file as stored (its digest) or gunzipped (its diff_id), streamed. */
export async function hashOf(file: string, gunzip: boolean): Promise<string> {
  const hash = createHash('sha256');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb();
    },
  });
  if (gunzip) await pipeline(createReadStream(file), createGunzip(), sink);
  else await pipeline(createReadStream(file), sink);
  return `sha256:${hash.digest('hex')}`;
}
