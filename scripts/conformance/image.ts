/**
 * What one built image is, for comparing: its config, its layers (as GNU tar lists them), and the
 * root file system `umoci unpack` makes of it (run as root, so owners are real), walked into a
 * sorted list of entries. Modification times are left out on purpose: buildah's --timestamp and
 * lading's SOURCE_DATE_EPOCH clamp different things.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { mustRun } from './proc.ts';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface FsEntry {
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky, as octal text ("0755"). */
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  /** sha256 of a regular file's content. */
  digest?: string;
  /** A small text file's content, only to show in a difference (never compared itself). */
  preview?: string;
  /** A symlink's target. */
  link?: string;
  /** A device's "major,minor". */
  rdev?: string;
  /** For a file with other hard links in the tree: the first path (in sorted order) of its group. */
  hardlink?: string;
}

export interface LayerSummary {
  entries: number;
  /** The first few paths, to show where a layer count differs. */
  sample: string[];
}

export interface ImageSnapshot {
  files: Map<string, FsEntry>;
  layers: LayerSummary[];
}

interface Descriptor {
  digest: string;
}

export function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return path.join(layoutDir, 'blobs', alg!, hex!);
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, 'utf8')) as T;
}

/** The manifest tagged `case` (or the only one) in an OCI layout folder. */
async function manifestOf(layoutDir: string): Promise<{ config: Descriptor; layers: Descriptor[] }> {
  const index = await readJson<{ manifests: Array<Descriptor & { annotations?: Record<string, string> }> }>(path.join(layoutDir, 'index.json'));
  const chosen = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'case') ?? index.manifests[0];
  if (!chosen) throw new Error(`${layoutDir}: index.json lists no image`);
  return readJson(blobPath(layoutDir, chosen.digest));
}

/** The `config` object of the image's config blob (Env, Cmd, …). */
export async function readImageConfig(layoutDir: string): Promise<Record<string, unknown>> {
  const manifest = await manifestOf(layoutDir);
  const config = await readJson<{ config?: Record<string, unknown> }>(blobPath(layoutDir, manifest.config.digest));
  return config.config ?? {};
}

export async function summarizeLayers(layoutDir: string, signal?: AbortSignal): Promise<LayerSummary[]> {
  const manifest = await manifestOf(layoutDir);
  const out: LayerSummary[] = [];
  for (const layer of manifest.layers) {
    // GNU tar reads gzip, zstd or plain tar alike when listing a file.
    const names = (await mustRun('tar', ['-tf', blobPath(layoutDir, layer.digest)], { timeoutMs: 120_000, signal })).split('\n').filter((l) => l !== '');
    out.push({ entries: names.length, sample: names.slice(0, 6) });
  }
  return out;
}

/** Unpack with umoci into `bundle` (created by umoci) and walk its rootfs. */
export async function snapshot(layoutDir: string, bundle: string, signal?: AbortSignal): Promise<ImageSnapshot> {
  await mustRun('umoci', ['unpack', '--image', `${layoutDir}:case`, bundle], { timeoutMs: 5 * 60_000, signal });
  const [files, layers] = await Promise.all([walkTree(path.join(bundle, 'rootfs')), summarizeLayers(layoutDir, signal)]);
  return { files, layers };
}

const PREVIEW_BYTES = 2048;

export async function walkTree(root: string): Promise<Map<string, FsEntry>> {
  const files = new Map<string, FsEntry>();
  const inodes = new Map<string, { first: string; count: number }>();
  const visit = async (rel: string): Promise<void> => {
    const abs = path.join(root, rel);
    const st = await fs.lstat(abs);
    const entry: FsEntry = { type: typeOf(st), mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), uid: st.uid, gid: st.gid };
    const shown = rel === '' ? '/' : `/${rel}`;
    if (entry.type === 'file') {
      entry.size = st.size;
      entry.digest = await sha256File(abs);
      if (st.size <= PREVIEW_BYTES) {
        const text = await fs.readFile(abs);
        if (!text.includes(0)) entry.preview = text.toString('utf8');
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const group = inodes.get(key);
        if (group) group.count++;
        else inodes.set(key, { first: shown, count: 1 });
        entry.hardlink = key;
      }
    } else if (entry.type === 'symlink') {
      entry.link = await fs.readlink(abs);
    } else if (entry.type === 'char' || entry.type === 'block') {
      entry.rdev = `${Math.floor(st.rdev / 256) & 0xfff},${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
    }
    files.set(shown, entry);
    if (entry.type === 'dir') {
      const names = (await fs.readdir(abs)).sort();
      for (const name of names) await visit(rel === '' ? name : `${rel}/${name}`);
    }
  };
  await visit('');
  // A hard-link group is named by its first path; a lone inode (links outside the tree) is no group.
  for (const entry of files.values()) {
    if (entry.hardlink === undefined) continue;
    const group = inodes.get(entry.hardlink)!;
    if (group.count > 1) entry.hardlink = group.first;
    else delete entry.hardlink;
  }
  return files;
}

function typeOf(st: import('node:fs').Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}
