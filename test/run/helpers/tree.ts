/**
 * What the RUN tests compare: full listings of root filesystems (type, mode, owner, content
 * hash, link target, hard-link groups), the reference tree made by a plain chroot of a umoci
 * unpack, and images built from RUN entries the way the engine will build them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assembleImage, layersOf } from '../../../src/image/mutate.ts';
import type { BlobSource, Image } from '../../../src/image/image.ts';
import type { LayerDescriptor } from '../../../src/image/types.ts';
import type { LayerEntry } from '../../../src/layer/entry.ts';
import { readOciLayoutImage, writeOciLayout } from '../../../src/output/oci-layout.ts';
import { BlobStore } from '../../../src/store/blob-store.ts';
import { busyboxImage } from '../../helpers/busybox.ts';

/** Paths whose content belongs to the runtime, not the image. */
const RUNTIME_DIRS = new Set(['proc', 'dev', 'sys']);

/**
 * One line per path below `root`: `path type mode uid:gid detail`, sorted. Hard links are grouped
 * by the first path of their inode, so two trees with the same links give the same lines.
 */
export function listTree(root: string): string[] {
  const lines: string[] = [];
  const firstOfInode = new Map<string, string>();
  const walk = (rel: string): void => {
    const names = fs.readdirSync(rel === '' ? root : path.join(root, rel)).sort();
    for (const name of names) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(root, childRel);
      const st = fs.lstatSync(abs);
      const head = `${childRel} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        lines.push(`${head} dir`);
        if (!(rel === '' && RUNTIME_DIRS.has(name))) walk(childRel);
      } else if (st.isSymbolicLink()) lines.push(`${head} symlink -> ${fs.readlinkSync(abs)}`);
      else if (st.isFile()) {
        const hash = createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16);
        let link = '';
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          const first = firstOfInode.get(key);
          if (first === undefined) firstOfInode.set(key, childRel);
          link = ` links=${st.nlink}${first === undefined ? '' : ` same-as=${first}`}`;
        }
        lines.push(`${head} file ${st.size} ${hash}${link}`);
      } else if (st.isFIFO()) lines.push(`${head} fifo`);
      else lines.push(`${head} other`);
    }
  };
  walk('');
  return lines;
}

/** Unpack an OCI layout's `latest` with umoci; returns the rootfs folder. */
export function umociUnpack(layout: string, bundle: string): string {
  execFileSync('umoci', ['unpack', '--image', `${layout}:latest`, bundle], { stdio: 'pipe' });
  return path.join(bundle, 'rootfs');
}

/** The reference: `layout` unpacked by umoci, then each script run in a plain chroot of it. */
export function referenceTreeOf(layout: string, bundle: string, scripts: string[]): string {
  const rootfs = umociUnpack(layout, bundle);
  for (const script of scripts) {
    execFileSync('chroot', [rootfs, '/bin/sh', '-c', script], { stdio: 'pipe', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  }
  return rootfs;
}

export interface Base {
  image: Image;
  layers: LayerDescriptor[];
  layout: string;
}

export async function loadBusybox(): Promise<Base> {
  const { layoutDir } = await busyboxImage();
  const image = await readOciLayoutImage(layoutDir);
  return { image, layers: layersOf(image), layout: layoutDir };
}

/** Layers for Rootfs.addLayer. */
export function blobsOf(base: Base): { descriptor: LayerDescriptor; open: () => Promise<import('node:stream').Readable> }[] {
  return base.layers.map((descriptor) => ({ descriptor, open: () => base.image.blobs.open(descriptor) }));
}

/**
 * What the engine does after RUN steps: an image of the base's layers plus the steps' layers
 * (already written into `store` with writeLayer), assembled and written as an OCI layout.
 */
export async function layoutWith(base: Base, added: LayerDescriptor[], store: BlobStore, dir: string): Promise<string> {
  const blobs: BlobSource = {
    open: async (desc) => ((await store.has(desc.digest)) ? store.openRead(desc.digest) : base.image.blobs.open(desc)),
    read: async (desc) => ((await store.has(desc.digest)) ? store.readBytes(desc.digest) : base.image.blobs.read(desc)),
  };
  const history = [...(base.image.config.history ?? []), ...added.map((_, i) => ({ created_by: `RUN step ${i + 1}` }))];
  const image = assembleImage({ config: { ...base.image.config, history }, layers: [...base.layers, ...added], blobs });
  await writeOciLayout(dir, [{ item: image, refName: 'latest' }]);
  return dir;
}

/** Entries in a comparable form: sorted, sources replaced by content hashes, link keys by groups. */
export function normaliseEntries(entries: LayerEntry[]): string[] {
  const groups = new Map<string, string>();
  return entries
    .slice()
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => {
      let content = '';
      if (e.type === 'file' && e.source?.kind === 'path') {
        content = createHash('sha256').update(fs.readFileSync(e.source.path)).digest('hex').slice(0, 16);
      }
      let link = '';
      if (e.linkKey !== undefined) {
        const first = groups.get(e.linkKey);
        if (first === undefined) groups.set(e.linkKey, e.path);
        link = first === undefined ? ' hardlink-group' : ` same-as=${first}`;
      }
      return `${e.path} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${e.size ?? ''} ${e.linkname ?? ''}${content}${link}`.trimEnd();
    });
}
