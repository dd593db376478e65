/**
 * `npm run conformance [-- [--keep] [--ci] [--jobs=N] [NAME…]]`: build every case of fixtures/conformance
 * with buildah and with lading, compare the images, print each difference, and end with
 * `N of M cases match (K with known differences)`. Exits 1 when any case has an unlisted
 * difference, a failed build or a listed difference that no longer occurs (and, in CI, when a case
 * had to be skipped).
 * NAME selects cases whose name contains it; --ci selects the subset `npm test` runs; --jobs=N
 * builds N cases at a time (default 2).
 */
import { loadCases } from './conformance/cases.ts';
import { formatCase, summaryLine } from './conformance/report.ts';
import { ConformanceRun, scheduleOrder, type CaseResult } from './conformance/runner.ts';
import { execFileSync } from 'node:child_process';

// test/helpers/tools.ts says the same, but importing it loads ava, which refuses to run outside its CLI.
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

function missingTools(tools: string[]): string[] {
  return tools.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${JSON.stringify(t)}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

async function main(argv: string[]): Promise<number> {
  const keep = argv.includes('--keep');
  const ciOnly = argv.includes('--ci');
  const names = argv.filter((a) => !a.startsWith('--'));
  const concurrency = Number(argv.find((a) => a.startsWith('--jobs='))?.slice('--jobs='.length) ?? 2);
  const missing = missingTools(['buildah', 'umoci', 'skopeo', 'tar']);
  if (missing.length > 0) {
    process.stderr.write(`conformance: missing tool(s): ${missing.join(', ')} (see .ci/run)\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('conformance: run as root (buildah with chroot isolation and umoci unpack keeping owners need it)\n');
    return 2;
  }
  const cases = scheduleOrder(loadCases()).filter((c) => (!ciOnly || c.spec.ci) && (names.length === 0 || names.some((n) => c.name.includes(n))));
  if (cases.length === 0) {
    process.stderr.write('conformance: no case selected\n');
    return 2;
  }
  const started = Date.now();
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const run = await ConformanceRun.open(cases, { keep, log });
  let interrupted = false;
  // Interrupted: stop every program, then clean up as usual (below).
  process.once('SIGINT', () => {
    interrupted = true;
    log('interrupted: stopping and cleaning up');
    run.abort();
  });
  const results: CaseResult[] = [];
  try {
    // buildah spends most of a build waiting, not computing: two cases at a time use the two cores better.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const r = await run.runCase(cases[next++]!);
        results.push(r);
        log(formatCase(r));
      }
    };
    await Promise.allSettled(Array.from({ length: concurrency }, worker));
  } finally {
    await run.close();
  }
  if (interrupted) return 130;
  const count = (pred: (r: CaseResult) => boolean): number => results.filter(pred).length;
  log('');
  log(`unlisted differences: ${count((r) => r.status === 'differ')}, build failures: ${count((r) => r.status === 'error')} (${count((r) => r.runUnsupported === true)} only because lading has no RUN), skipped: ${count((r) => r.status === 'skipped')}, stale known lists: ${count((r) => r.stale.length > 0)}`);
  log(`time: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  log(summaryLine(results));
  const failed = results.some((r) => r.status === 'differ' || r.status === 'error' || r.stale.length > 0 || (IN_CI && r.status === 'skipped'));
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`conformance: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
