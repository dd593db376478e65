/**
 * The reference docs follow the code: docs/cli.md and the flag table of docs/migration.md are
 * what scripts/gen-cli-docs.ts makes of the option definitions today, and docs/troubleshooting.md
 * has a section for every error code, with the exit status the CLI really uses for it.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CLI_DOC, MIGRATION_DOC, ROOT, renderCliDocs, withMigrationTable } from '../../scripts/gen-cli-docs.ts';
import { COMMANDS } from '../../src/cli/options.ts';
import { exitStatusFor } from '../../src/cli/main.ts';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.ts';

test('docs/cli.md is generated from the option definitions (run `npm run docs` after changing a flag)', async (t) => {
  const onDisk = await fs.readFile(CLI_DOC, 'utf8');
  t.true(onDisk === renderCliDocs(), 'docs/cli.md is out of date: run `npm run docs`');
  for (const command of COMMANDS) {
    t.true(onDisk.includes(`## lading ${command.name}\n`), command.name);
    for (const o of command.options) t.true(onDisk.includes(`\`--${o.name}`), `${command.name} --${o.name}`);
  }
});

test("docs/migration.md's flag table is generated from the peers of the build options", async (t) => {
  const onDisk = await fs.readFile(MIGRATION_DOC, 'utf8');
  t.true(onDisk === withMigrationTable(onDisk), 'the migration table is out of date: run `npm run docs`');
  const build = COMMANDS.find((c) => c.name === 'build')!;
  for (const o of build.options.filter((x) => x.peers?.kaniko)) t.true(onDisk.includes(`\`${o.peers!.kaniko}\``), `kaniko ${o.peers!.kaniko}`);
  for (const o of build.options.filter((x) => x.peers?.buildx)) t.true(onDisk.includes(`\`${o.peers!.buildx}\``), `buildx ${o.peers!.buildx}`);
});

test('docs/troubleshooting.md has a section for every error code, in order, with its real exit status', async (t) => {
  const text = await fs.readFile(path.join(ROOT, 'docs', 'troubleshooting.md'), 'utf8');
  const headings = [...text.matchAll(/^## ([A-Z_]+)$/gm)].map((m) => m[1]);
  t.deepEqual(headings, Object.values(ERROR_CODES), 'one `## CODE` heading per code, in the order of ERROR_CODES');
  const sections = text.split(/^## /m).slice(1);
  for (const code of Object.values(ERROR_CODES) as ErrorCode[]) {
    const body = sections.find((s) => s.startsWith(`${code}\n`)) ?? '';
    t.true(body.length > 200, `${code} says what to do`);
    t.regex(body, new RegExp(`\\*\\*Exit status ${exitStatusFor(code)}\\.\\*\\*`), `${code} names exit status ${exitStatusFor(code)}`);
  }
});

test('every relative link in docs/ points at a file that exists', async (t) => {
  const dir = path.join(ROOT, 'docs');
  const files = (await fs.readdir(dir, { recursive: true })).filter((f) => f.endsWith('.md'));
  for (const file of files) {
    const text = await fs.readFile(path.join(dir, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+\.(?:md|ya?ml|ts))(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const resolved = path.resolve(path.dirname(path.join(dir, file)), target);
      const exists = await fs.stat(resolved).then(() => true, () => false);
      t.true(exists, `${file} links to ${target}`);
    }
  }
});
