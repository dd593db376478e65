/**
 * node:zlib vs fflate for layer compression, at gzip levels 1 and 6, on a 200 MB mixed corpus;
 * plus lading's block-parallel gzip (node:zlib on the thread pool) and pigz for reference.
 * The numbers are recorded in docs/decisions.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Gzip as FflateGzip } from 'fflate';
import { createCompressor } from '../src/layer/compress.ts';
import { mixedBuffer } from './corpus.ts';
import type { BenchRow } from './types.ts';

const SIZE = 200 * 1024 * 1024;
const CHUNK = 1024 * 1024;

function chunks(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += CHUNK) out.push(buf.subarray(i, i + CHUNK));
  return out;
}

async function timeStream(make: () => NodeJS.ReadWriteStream, input: Buffer): Promise<{ s: number; out: number }> {
  const t0 = performance.now();
  const c = make();
  Readable.from(chunks(input), { objectMode: false }).pipe(c as unknown as NodeJS.WritableStream);
  let out = 0;
  for await (const chunk of c as unknown as AsyncIterable<Buffer>) out += chunk.length;
  return { s: (performance.now() - t0) / 1000, out };
}

function timeFflate(input: Buffer, level: number): { s: number; out: number } {
  const t0 = performance.now();
  let out = 0;
  const gz = new FflateGzip({ level: level as 1 | 6 }, (data) => {
    out += data.length;
  });
  const parts = chunks(input);
  parts.forEach((p, i) => gz.push(p, i === parts.length - 1));
  return { s: (performance.now() - t0) / 1000, out };
}

const mbps = (s: number): number => SIZE / 1024 / 1024 / s;

export default async function compressionBench(): Promise<BenchRow[]> {
  const input = mixedBuffer(SIZE);
  const rows: BenchRow[] = [];
  for (const level of [1, 6]) {
    const single = await timeStream(() => zlib.createGzip({ level }), input);
    const ff = timeFflate(input, level);
    const parallel = await timeStream(() => createCompressor({ compression: 'gzip', level }), input);
    const ratio = (o: number): string => `${((o / SIZE) * 100).toFixed(1)}%`;
    process.stderr.write(`  level ${level}: zlib ${ratio(single.out)}, fflate ${ratio(ff.out)}, parallel ${ratio(parallel.out)} of input\n`);
    rows.push({ name: `gzip-${level} node:zlib, one thread`, ours: mbps(single.s), unit: 'MB/s', peer: { name: 'fflate', value: mbps(ff.s) } });
    rows.push({ name: `gzip-${level} lading block-parallel (${os.availableParallelism()} cores)`, ours: mbps(parallel.s), unit: 'MB/s', peer: { name: 'node:zlib one thread', value: mbps(single.s) } });
  }
  for (const level of [1, 3, 9]) {
    const zstd = await timeStream(() => createCompressor({ compression: 'zstd', level }), input);
    const gzip6 = await timeStream(() => createCompressor({ compression: 'gzip', level: 6 }), input);
    process.stderr.write(`  zstd-${level}: ${((zstd.out / SIZE) * 100).toFixed(1)}% of input; gzip-6 ${((gzip6.out / SIZE) * 100).toFixed(1)}%\n`);
    rows.push({ name: `zstd-${level} lading block-parallel`, ours: mbps(zstd.s), unit: 'MB/s', peer: { name: 'gzip-6 block-parallel', value: mbps(gzip6.s) } });
  }
  try {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-bench-'));
    const file = path.join(dir, 'corpus');
    await fs.writeFile(file, input);
    const t0 = performance.now();
    execFileSync('sh', ['-c', `pigz -6 -p ${os.availableParallelism()} -c ${file} > /dev/null`]);
    const pigz = (performance.now() - t0) / 1000;
    const parallel = await timeStream(() => createCompressor({ compression: 'gzip', level: 6 }), input);
    rows.push({ name: 'gzip-6 lading block-parallel', ours: mbps(parallel.s), unit: 'MB/s', peer: { name: 'pigz -6', value: mbps(pigz) }, target: '≥ 0.9 × pigz', met: mbps(parallel.s) >= 0.9 * mbps(pigz) });
    await fs.rm(dir, { recursive: true, force: true });
  } catch {
    process.stderr.write('  pigz not installed: skipping the pigz comparison\n');
  }
  return rows;
}
