/**
 * The fuzz targets of test/fuzz/targets.ts, a few thousand generated inputs each (LADING_FUZZ_RUNS
 * changes how many; `npm run fuzz` runs 100,000 each). A failure prints fast-check's shrunk
 * counterexample and the seed to replay it.
 */
import test from 'ava';
import fc from 'fast-check';
import { TARGETS, type TargetName } from './targets.ts';

const RUNS = Number(process.env.LADING_FUZZ_RUNS ?? 2000);

for (const name of Object.keys(TARGETS) as TargetName[]) {
  test(`fuzz ${name}: ${RUNS} inputs, no crash but LadingError`, async (t) => {
    const started = Date.now();
    const property = TARGETS[name];
    // fast-check's property types differ for sync and async targets; assert runs both.
    await fc.assert(property as fc.IAsyncProperty<unknown[]>, { numRuns: RUNS });
    t.log(`${RUNS} inputs in ${Date.now() - started} ms`);
    t.pass();
  });
}
