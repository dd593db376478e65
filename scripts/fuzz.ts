/**
 * `npm run fuzz`: every fuzz target of test/fuzz/targets.ts with 100,000 generated inputs (or
 * `--runs N`, or one target with `--only NAME`), printing the time each took. A failure prints
 * fast-check's shrunk counterexample and its seed, and the exit status is 1.
 */
import fc from 'fast-check';
import { TARGETS, type TargetName } from '../test/fuzz/targets.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(flag('--runs') ?? process.env.LADING_FUZZ_RUNS ?? 100_000);
const only = flag('--only');
const seed = flag('--seed');
let failed = 0;
const total = Date.now();
for (const name of Object.keys(TARGETS) as TargetName[]) {
  if (only && only !== name) continue;
  const started = Date.now();
  try {
    await fc.assert(TARGETS[name] as fc.IAsyncProperty<unknown[]>, { numRuns: runs, ...(seed ? { seed: Number(seed) } : {}) });
    console.log(`${name.padEnd(14)} ${runs} inputs  ok      ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    failed++;
    console.log(`${name.padEnd(14)} FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s\n${(err as Error).message}`);
  }
}
console.log(`total ${((Date.now() - total) / 1000).toFixed(1)} s`);
process.exitCode = failed > 0 ? 1 : 0;
