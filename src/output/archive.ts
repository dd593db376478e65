/**
 * A tar file assembled from named byte buffers and blobs, written to a temporary file and renamed
 * into place, so a failed write leaves nothing behind. Shared by the `docker load` tarball and the
 * OCI archive; entries are deterministic (fixed owner, mode and time).
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ERROR_CODES, LadingError, fsError } from '../errors.ts';
import type { BlobSource } from '../image/image.ts';
import type { Descriptor } from '../image/types.ts';

type Header = Parameters<tar.Pack['entry']>[0];

function header(name: string, size: number, type: 'file' | 'directory'): Header {
  return { name, size, type, mode: type === 'directory' ? 0o40755 : 0o100644, uid: 0, gid: 0, mtime: new Date(0) };
}

export class ArchiveWriter {
  private readonly pack = tar.pack();
  private readonly file: string;
  private readonly tmp: string;
  private readonly done: Promise<void>;
  private readonly dirs = new Set<string>();
  private readonly names = new Set<string>();

  constructor(file: string) {
    this.file = file;
    const tmp = `${file}.${process.pid}.tmp`;
    this.tmp = tmp;
    this.done = (async () => {
      await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
      await pipeline(this.pack as unknown as NodeJS.ReadableStream, createWriteStream(tmp));
    })();
    // Reported by finish(); without this the rejection would be unhandled until then.
    this.done.catch(() => undefined);
  }

  private entry(h: Header, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.pack.entry(h, body, (err) => (err ? reject(err) : resolve())));
  }

  private async parents(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.dirs.has(dir)) continue;
      this.dirs.add(dir);
      await this.entry(header(`${dir}/`, 0, 'directory'), Buffer.alloc(0));
    }
  }

  async addBytes(name: string, bytes: Buffer): Promise<void> {
    if (this.names.has(name)) return;
    this.names.add(name);
    await this.parents(name);
    await this.entry(header(name, bytes.length, 'file'), bytes);
  }

  /** Stream a blob into the archive (once per name). */
  async addBlob(name: string, desc: Descriptor, blobs: BlobSource): Promise<void> {
    if (this.names.has(name)) return;
    this.names.add(name);
    await this.parents(name);
    const input = await blobs.open(desc);
    await new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry(header(name, desc.size, 'file'), (err) => (err ? reject(err) : resolve()));
      (async () => {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          if (!sink.write(chunk)) await new Promise<void>((r) => sink.once('drain', () => r()));
        }
        sink.end(undefined);
      })().catch((err: unknown) => {
        sink.destroy(err as Error);
        reject(err);
      });
    });
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    try {
      await this.done;
      await fs.rename(this.tmp, this.file);
    } catch (err) {
      await this.abort();
      throw err instanceof LadingError ? err : fsError(ERROR_CODES.OUTPUT, 'write', this.file, err);
    }
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await fs.rm(this.tmp, { force: true });
  }
}

/** Write an archive with `fill`, removing the partial file if anything fails. */
export async function writeArchive(file: string, fill: (w: ArchiveWriter) => Promise<void>): Promise<void> {
  const w = new ArchiveWriter(file);
  try {
    await fill(w);
  } catch (err) {
    await w.abort();
    if (err instanceof LadingError) throw err;
    throw fsError(ERROR_CODES.OUTPUT, 'write', file, err);
  }
  await w.finish();
}
