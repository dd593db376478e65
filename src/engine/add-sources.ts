/**
 * What ADD does beyond COPY: local tar archives (gzip, bzip2, xz, zstd or plain) are unpacked
 * into the destination, and URLs are downloaded (checked against `--checksum` when given).
 * Unpacked and downloaded files go to a private folder in the store until the layer is written.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import { readTar } from '../layer/tar-reader.ts';
import type { CopyMatch, CopySourceFile } from './copy-plan.ts';

type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

const MAGICS: [Compression, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

async function head(file: string, n: number): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function compressionOf(bytes: Buffer): Compression {
  for (const [name, magic] of MAGICS) if (magic.every((b, i) => bytes[i] === b)) return name;
  return 'none';
}

/** The decompressed bytes of `file`; bzip2, xz and zstd go through the system's own tools. */
function decompressed(file: string, compression: Compression): Readable {
  const input = createReadStream(file);
  if (compression === 'none') return input;
  if (compression === 'gzip') return input.pipe(zlib.createGunzip());
  const tool = compression === 'bzip2' ? 'bzip2' : compression;
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const out = new PassThrough();
  child.on('error', (err) =>
    out.destroy(
      new LadingError(ERROR_CODES.CONTEXT, `cannot unpack ${path.basename(file)}: the ${tool} program is needed for ${compression} archives`, {
        cause: err,
        hint: `install ${tool}, or ADD an uncompressed or gzip archive`,
      }),
    ),
  );
  child.on('close', (code) => {
    if (code !== 0 && code !== null) out.destroy(new LadingError(ERROR_CODES.CONTEXT, `${tool} could not decompress ${path.basename(file)} (exit ${code})`));
  });
  input.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  child.stdout.pipe(out);
  return out;
}

/** A tar header block is recognisable by its checksum, whatever its format flavour. */
function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = Number.parseInt(block.subarray(148, 156).toString('latin1').replace(/[\0 ]/g, ''), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

async function firstBlock(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    n += (chunk as Buffer).length;
    if (n >= 512) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, 512);
}

/** Whether a context file is an archive ADD should unpack (decided by content, as Docker does). */
export async function isArchive(file: string): Promise<boolean> {
  const compression = compressionOf(await head(file, 6));
  try {
    return isTarHeader(await firstBlock(decompressed(file, compression)));
  } catch {
    return false;
  }
}

/**
 * Unpack `file` into `workDir` and describe its entries as one directory match, so that COPY's
 * planning puts its contents into the destination. Owners come from the archive.
 */
export async function unpackArchive(file: string, workDir: string, source: string, signal?: AbortSignal): Promise<CopyMatch> {
  const compression = compressionOf(await head(file, 6));
  const files = new Map<string, CopySourceFile>();
  let counter = 0;
  await readTar(
    decompressed(file, compression),
    async (entry, body) => {
      if (entry.path === '') return;
      const base = { rel: entry.path, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime };
      if (entry.type === 'directory') {
        files.set(entry.path, { ...base, type: 'directory', size: 0 });
      } else if (entry.type === 'symlink') {
        files.set(entry.path, { ...base, type: 'symlink', size: 0, linkname: entry.linkname! });
      } else if (entry.type === 'file') {
        const stored = path.join(workDir, String(counter++));
        const hash = createHash('sha256');
        const sink = createWriteStream(stored);
        body.on('data', (c: Buffer) => hash.update(c));
        await pipeline(body, sink);
        const digest = `sha256:${hash.digest('hex')}`;
        files.set(entry.path, { ...base, type: 'file', size: entry.size, source: { kind: 'path', path: stored }, digest: async () => digest });
      } else if (entry.type === 'hardlink') {
        const target = files.get(entry.linkname!);
        if (!target || target.type !== 'file') {
          throw new LadingError(ERROR_CODES.TAR, `archive ${source}: hard link ${entry.path} points at ${entry.linkname}, which is not a file before it`);
        }
        // Both names share one body in the layer.
        target.linkKey ??= `archive:${target.rel}`;
        files.set(entry.path, { ...target, rel: entry.path, mode: target.mode });
      }
      // Device nodes and fifos in an archive are skipped, as rootless Docker builds do.
    },
    { signal },
  );
  const root: CopySourceFile = { rel: '', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0 };
  return { path: '', root, entries: [...files.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)) };
}

/** The name a downloaded file gets: the last segment of the URL path. */
export function urlFileName(url: URL): string {
  const base = decodeURIComponent(url.pathname.split('/').filter(Boolean).at(-1) ?? '');
  return base === '' ? 'index.html' : base;
}

/**
 * Download `url` into `workDir`, verifying `checksum` (`sha256:...`) when given. Files from URLs
 * get mode 0600, as Docker gives them.
 */
export async function downloadUrl(
  url: string,
  workDir: string,
  options: { checksum?: string; signal?: AbortSignal; location: SourceLocation },
): Promise<CopyMatch> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid URL "${url}" in ADD`, { location: options.location });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `ADD cannot fetch ${parsed.protocol} URLs: ${url}`, {
      location: options.location,
      hint: 'ADD downloads http and https URLs; clone git repositories before the build and COPY them',
    });
  }
  if (options.checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(options.checksum)) {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid --checksum "${options.checksum}"`, {
      location: options.location,
      hint: 'write --checksum=sha256:<64 hex digits>',
    });
  }
  const safeUrl = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  let response: Response;
  try {
    response = await fetch(parsed, { signal: options.signal, redirect: 'follow' });
  } catch (err) {
    throw new LadingError(ERROR_CODES.CONTEXT, `cannot download ${safeUrl}: ${(err as Error).message}`, { location: options.location, cause: err });
  }
  if (!response.ok || !response.body) {
    throw new LadingError(ERROR_CODES.CONTEXT, `cannot download ${safeUrl}: HTTP ${response.status}`, {
      location: options.location,
      hint: 'check the URL; ADD needs it to answer 200',
    });
  }
  const stored = path.join(workDir, 'download');
  const hash = createHash('sha256');
  let size = 0;
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => {
    hash.update(c);
    size += c.length;
  });
  await pipeline(body, createWriteStream(stored));
  const digest = `sha256:${hash.digest('hex')}`;
  if (options.checksum !== undefined && digest !== options.checksum) {
    throw new LadingError(ERROR_CODES.DIGEST_MISMATCH, `${safeUrl} does not match --checksum: expected ${options.checksum}, got ${digest}`, {
      location: options.location,
      hint: 'the file at that URL changed, or the checksum is wrong',
    });
  }
  const name = urlFileName(parsed);
  const file: CopySourceFile = { rel: name, type: 'file', mode: 0o600, uid: 0, gid: 0, size, source: { kind: 'path', path: stored }, digest: async () => digest };
  return { path: name, root: file, entries: [file] };
}

export function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || source.startsWith('git@');
}
