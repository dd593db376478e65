/**
 * Outside programs the tests need. A suite that needs a missing tool is skipped with a loud
 * warning on a developer machine, and fails in CI (where CI=true), so CI never passes by skipping.
 */
import anyTest, { type TestFn } from 'ava';
import { execFileSync } from 'node:child_process';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

const found = new Map<string, boolean>();

export function hasTool(name: string): boolean {
  let ok = found.get(name);
  if (ok === undefined) {
    try {
      execFileSync('sh', ['-c', `command -v ${JSON.stringify(name)}`], { stdio: 'ignore' });
      ok = true;
    } catch {
      ok = false;
    }
    found.set(name, ok);
  }
  return ok;
}

export function missingTools(tools: string[]): string[] {
  return tools.filter((t) => !hasTool(t));
}

/**
 * The ava `test` function for a suite needing `tools`: itself when all are present; otherwise
 * `test.skip` (outside CI, with a warning) or a test that fails (in CI).
 */
export function testNeeding<Context = unknown>(tools: string[], suite: string): TestFn<Context> {
  const test = anyTest as TestFn<Context>;
  const missing = missingTools(tools);
  if (missing.length === 0) return test;
  const message = `${suite}: required tool(s) missing: ${missing.join(', ')} (install them: see .ci/run)`;
  if (IN_CI) {
    test(`${suite} prerequisites`, (t) => {
      t.fail(message);
    });
    return test.skip as unknown as TestFn<Context>;
  }
  process.stderr.write(`\n!!! SKIPPING ${message}\n\n`);
  return test.skip as unknown as TestFn<Context>;
}
