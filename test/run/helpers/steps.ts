/** The steps the RUN suites run, and running them the way the engine will. */
import path from 'node:path';
import type { LayerDescriptor } from '../../../src/image/types.ts';
import { writeLayer } from '../../../src/layer/write-layer.ts';
import { Rootfs, type RootfsOptions, type RunResult, type SandboxKind, type SnapshotKind } from '../../../src/run/index.ts';
import { BlobStore } from '../../../src/store/blob-store.ts';
import { blobsOf, layoutWith, normaliseEntries, type Base } from './tree.ts';

/** Every kind of change a layer can carry. No /dev or /proc use: the reference chroot has neither. */
export const STEP1 = `set -e
mkdir -p /opt/app/sub
echo hello > /opt/app/hello.txt
printf '#!/bin/sh\necho tool\n' > /opt/app/tool
chmod 4755 /opt/app/tool
echo 'extra:x:1234:1234::/:/bin/sh' >> /etc/passwd
chown 1000:1000 /opt/app/sub
ln -s ../hello.txt /opt/app/sub/link
chown -h 65534:65534 /opt/app/sub/link
ln /opt/app/hello.txt /opt/app/hard
rm /bin/vi
rm -rf /var/tmp
rm -rf /home/app && mkdir /home/app && echo new > /home/app/new && chown -R 1000:1000 /home/app
mkfifo -m 600 /opt/app/fifo
touch /tmp/scratch && rm /tmp/scratch
chmod 700 /root
mkdir -m 2775 /srv && chgrp 1000 /srv
cat /etc/group > /opt/app/group-copy
`;

/** STEP1 without chown/chgrp, for sandboxes that cannot give files to other ids. */
export const STEP1_NO_CHOWN = STEP1.split('\n')
  .filter((line) => !/^ch(own|grp) /.test(line))
  .map((line) => line.replace(/ && ch(own|grp) [^&]*$/, ''))
  .join('\n');

/** A second step on top of the first: consecutive steps reuse the root. */
export const STEP2 = `set -e
echo again >> /opt/app/hello.txt
rm /opt/app/sub/link
mv /opt/app/sub /opt/app/moved
ln -s /nonexistent /dangling
rm /etc/group
echo rewritten > /opt/app/group-copy
chmod 640 /opt/app/group-copy
mkdir -p /usr/local/bin
printf '#!/bin/sh\\necho "built by lading"\\n' > /usr/local/bin/hello
chmod 755 /usr/local/bin/hello
`;

export interface Built {
  layout: string;
  normalised: string[][];
  results: RunResult[];
}

/** Run the steps on the busybox base, writing each step's layer right after it, as the engine does. */
export async function buildWithSteps(
  base: Base,
  work: string,
  sandbox: SandboxKind,
  snapshot: SnapshotKind,
  steps: string[],
  options: Omit<RootfsOptions, 'sandbox' | 'snapshot'> = {},
): Promise<Built> {
  const root = await Rootfs.create(path.join(work, 'rootfs'), { ...options, sandbox, snapshot });
  const store = await BlobStore.open(path.join(work, 'store'));
  const added: LayerDescriptor[] = [];
  const normalised: string[][] = [];
  const results: RunResult[] = [];
  try {
    for (const layer of blobsOf(base)) await root.addLayer(layer);
    for (const script of steps) {
      const r = await root.run({ argv: ['/bin/sh', '-c', script], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], workdir: '/' });
      if (r.sandbox !== sandbox || r.snapshot !== snapshot) throw new Error(`ran in ${r.sandbox}/${r.snapshot}, wanted ${sandbox}/${snapshot}`);
      results.push(r);
      normalised.push(normaliseEntries(r.entries));
      added.push(await writeLayer(r.entries, store));
    }
  } finally {
    await root.dispose();
  }
  return { layout: await layoutWith(base, added, store, path.join(work, 'layout')), normalised, results };
}

