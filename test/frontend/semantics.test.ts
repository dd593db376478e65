/**
 * The table in semantics-cases.ts, run through loadDockerfile() and the dispatcher. Every case
 * names the documented rule it checks.
 */
import test, { type ExecutionContext } from 'ava';
import { LadingError } from '../../src/errors.ts';
import { argCases, copyCases, envCases, type DispatchCase } from './semantics-cases.ts';
import { copySteps, envMap, runDockerfile, runSteps, type DockerfileRun } from './semantics-run.ts';

function baseOf(run: DockerfileRun): string {
  const base = run.frontend.graph.stages[run.frontend.graph.target]!.base;
  return base.kind === 'image' ? base.ref : base.kind === 'stage' ? `stage:${base.index}` : 'scratch';
}

function checkEnv(t: ExecutionContext, what: string, actual: Map<string, string>, expected: Record<string, string | null>): void {
  for (const [name, value] of Object.entries(expected)) {
    if (value === null) t.false(actual.has(name), `${what}: ${name} should not be set (it is "${actual.get(name)}")`);
    else t.is(actual.get(name), value, `${what}: ${name}`);
  }
}

function check(t: ExecutionContext, c: DispatchCase): void {
  const options = { ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}), ...(c.target ? { target: c.target } : {}), ...(c.images ? { images: c.images } : {}) };
  if (c.expect.error) {
    const err = t.throws(() => runDockerfile(c.dockerfile, options), { instanceOf: LadingError });
    t.regex(err.message, c.expect.error.message);
    if (c.expect.error.line !== undefined) t.is(err.location?.line, c.expect.error.line, 'error line');
    t.is(err.location?.file, 'Dockerfile');
    return;
  }
  const run = runDockerfile(c.dockerfile, options);
  const e = c.expect;
  const target = run.target;
  const lastRun = runSteps(target).at(-1);
  const lastCopy = copySteps(target).at(-1);
  if (e.base !== undefined) t.is(baseOf(run), e.base, 'base');
  if (e.runEnv !== undefined) {
    t.truthy(lastRun, 'the stage has a RUN');
    checkEnv(t, 'RUN env', envMap(lastRun?.env), e.runEnv);
  }
  if (e.runHistory !== undefined) t.is(lastRun?.history, e.runHistory, 'RUN history');
  if (e.argv !== undefined) t.deepEqual(lastRun?.argv, e.argv, 'RUN argv');
  if (e.configEnv !== undefined) checkEnv(t, 'config Env', envMap(target.config.Env), e.configEnv);
  if (e.config !== undefined) {
    for (const [key, value] of Object.entries(e.config)) t.deepEqual((target.config as Record<string, unknown>)[key], value, `config.${key}`);
  }
  if (e.history !== undefined) t.deepEqual(target.steps.map((s) => s.history), e.history, 'history');
  if (e.copy !== undefined) {
    t.truthy(lastCopy, 'the stage has a COPY or ADD');
    for (const [key, value] of Object.entries(e.copy)) t.deepEqual((lastCopy as unknown as Record<string, unknown>)[key], value, `copy.${key}`);
  }
  const warnings = run.frontend.graph.warnings.map((w) => w.message);
  for (const re of e.warnings ?? []) t.true(warnings.some((w) => re.test(w)), `a warning matching ${re} in ${JSON.stringify(warnings)}`);
  if (e.noWarnings) t.deepEqual(warnings, []);
}

for (const [group, cases] of [['ARG', argCases], ['ENV', envCases], ['COPY', copyCases]] as const) {
  for (const c of cases) test(`${group}: ${c.name}`, (t) => check(t, c));
}

test('the table has at least 80 dispatch cases, each citing a rule', (t) => {
  const all = [...argCases, ...envCases, ...copyCases];
  t.true(all.length >= 80, `${all.length} cases`);
  for (const c of all) t.true(c.rule.length > 10, c.name);
  t.is(new Set(all.map((c) => c.name)).size, all.length, 'case names are unique');
});
