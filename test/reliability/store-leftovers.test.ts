/**
 * What a `kill -9` leaves in the store: temporary files beside cache records, stat caches, layer
 * indexes and --explain states (atomic writes killed between write and rename), and `tmp/`
 * entries. Opening the store removes those of dead processes and keeps those of live ones.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BlobStore } from '../../src/store/blob-store.ts';
import { tempDir } from '../helpers/cli.ts';
import { temporaries } from './helpers/procs.ts';

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout as unknown as number;
}

test('opening the store removes temporaries of dead writers everywhere, and keeps live ones', async (t) => {
  const root = await tempDir(t, 'lading-leftovers-');
  const dead = Number(deadPid());
  const live = process.pid;
  const files = (pid: number): string[] => [
    `index/ab/${'ab'.repeat(32)}.json.${pid}.0a1b2c3d.tmp`,
    `statcache/0123456789abcdef.json.${pid}.tmp`,
    `fsindex/sha256-${'c'.repeat(64)}.json.${pid}.deadbeef.tmp`,
    `explain/${'d'.repeat(32)}.json.${pid}.12345678.tmp`,
    `tmp/${pid}-0011223344556677.part`,
    `tmp/${pid}-from-AbCdEf/0`,
  ];
  for (const f of [...files(dead), ...files(live)]) {
    await fs.mkdir(path.dirname(path.join(root, f)), { recursive: true });
    await fs.writeFile(path.join(root, f), 'partial');
  }
  await fs.writeFile(path.join(root, 'index', 'ab', `${'ab'.repeat(32)}.json`), '{}');
  await BlobStore.open(root);
  const left = await temporaries(root);
  for (const f of files(dead)) t.false(left.some((l) => f.startsWith(l)), `${f} of a dead writer is gone`);
  for (const f of files(live).filter((x) => !x.startsWith('tmp/'))) t.true(left.includes(f), `${f} of a live writer stays`);
  t.true(left.includes(`tmp/${live}-0011223344556677.part`));
  t.true(await fs.access(path.join(root, 'index', 'ab', `${'ab'.repeat(32)}.json`)).then(() => true, () => false), 'records stay');
});
