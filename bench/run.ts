/**
 * `npm run bench [NAME...]`: runs every bench/*.bench.ts (or those whose file name contains a
 * NAME) and prints one table. Numbers from peers are measured in the same run, on the same
 * machine, because disk-heavy timings on a VM vary too much to compare across runs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bench, BenchRow } from './types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = (await fs.readdir(here))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((n) => f.includes(n)))
  .sort();

const rows: BenchRow[] = [];
for (const file of files) {
  process.stderr.write(`bench: ${file}\n`);
  const mod = (await import(pathToFileURL(path.join(here, file)).href)) as { default: Bench };
  for (const row of await mod.default()) {
    rows.push(row);
    process.stderr.write(`  ${format(row)}\n`);
  }
}

function format(row: BenchRow): string {
  const peer = row.peer ? `  (${row.peer.name}: ${row.peer.value.toFixed(2)} ${row.unit})` : '';
  const target = row.target ? `  target ${row.target}: ${row.met === undefined ? '-' : row.met ? 'met' : 'NOT met'}` : '';
  return `${row.name}: ${row.ours.toFixed(2)} ${row.unit}${peer}${target}`;
}

console.log('\n| benchmark | lading | peer | target |\n| --- | --- | --- | --- |');
for (const row of rows) {
  const peer = row.peer ? `${row.peer.name}: ${row.peer.value.toFixed(2)} ${row.unit}` : '';
  const target = row.target ? `${row.target} (${row.met === undefined ? '-' : row.met ? 'met' : 'NOT met'})` : '';
  console.log(`| ${row.name} | ${row.ours.toFixed(2)} ${row.unit} | ${peer} | ${target} |`);
}
