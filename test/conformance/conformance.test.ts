/**
 * Differential conformance: each case of fixtures/conformance built by buildah and by lading must
 * give the same image, apart from the differences the case lists with a reason. One test per
 * case. `npm test` runs the cases marked "ci" (LADING_CONFORMANCE=full runs all of them, as
 * `npm run conformance` and .ci/run do); lading is run as the compiled CLI, so `npm run build`
 * first. The last line printed is `conformance: N of M cases match (K with known differences only)`.
 */
import { loadCases, type Case } from '../../scripts/conformance/cases.ts';
import { formatCase } from '../../scripts/conformance/report.ts';
import { ConformanceRun, scheduleOrder, type CaseResult } from '../../scripts/conformance/runner.ts';
import { IN_CI, testNeeding } from '../helpers/tools.ts';

const test = testNeeding(['buildah', 'umoci', 'skopeo', 'tar'], 'conformance against buildah');
const full = process.env.LADING_CONFORMANCE === 'full';
const cases = scheduleOrder(loadCases().filter((c) => full || c.spec.ci));
const isRoot = process.getuid?.() === 0;

/** Two cases at a time: buildah waits more than it computes, and CI has two cores. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (fn) => {
    while (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
const limit = limiter(2);

let run: ConformanceRun | undefined;
const results: { matches: boolean; known: boolean }[] = [];

if (!isRoot) {
  const message = 'conformance: needs root (buildah with chroot isolation, umoci unpack keeping owners)';
  if (IN_CI) test('conformance prerequisites', (t) => t.fail(message));
  else process.stderr.write(`\n!!! SKIPPING ${message}\n\n`);
} else {
  test.before(async () => {
    run = await ConformanceRun.open(cases);
  });
  test.after.always(async () => {
    await run?.close();
    // The line `npm run conformance` ends with, for CI logs.
    const known = results.filter((r) => r.known).length;
    process.stdout.write(`\nconformance: ${results.filter((r) => r.matches).length} of ${cases.length} cases match (${known} with known differences only)\n`);
  });
  for (const c of cases) registerCase(c);
}

function registerCase(c: Case): void {
  test(`${c.name}: buildah and lading build the same image`, async (t) => {
    const r: CaseResult = await limit(() => run!.runCase(c));
    t.log(formatCase(r));
    if (r.status === 'skipped') {
      if (IN_CI) t.fail(r.skipReason);
      else {
        process.stderr.write(`\n!!! conformance ${c.name} NOT COMPARED: ${r.skipReason}\n\n`);
        t.pass();
      }
      return;
    }
    t.is(r.harnessError, undefined, 'the harness runs (umoci, tar, buildah push)');
    t.is(r.buildahError, undefined, 'buildah builds the case');
    t.is(r.ladingError, undefined, r.runUnsupported ? 'lading builds the case (it failed only because this lading has no RUN)' : 'lading builds the case');
    const unlisted = r.differences.filter((d) => !d.known);
    const matches = r.harnessError === undefined && r.buildahError === undefined && r.ladingError === undefined && unlisted.length === 0 && r.stale.length === 0;
    results.push({ matches, known: matches && r.differences.length > 0 });
    t.is(unlisted.length, 0, 'no difference the case does not list (see the log above)');
    t.is(r.stale.length, 0, 'every difference the case lists still occurs');
  });
}
