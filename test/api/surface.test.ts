/**
 * The library is the whole product, the CLI one client of it: every `lading build` flag becomes
 * a BuildOptions field through buildOptions() (checked by parsing real argv), every BuildOptions
 * field is reachable from the CLI or says why not, and every option and result field of the
 * public functions has a doc comment.
 */
import test from 'ava';
import { parseArgs } from 'node:util';
import type { BuildOptions } from '../../src/index.ts';
import { buildOptions } from '../../src/cli/main.ts';
import { BUILD_OPTIONS, parseArgsConfig } from '../../src/cli/options.ts';
import { loadApi, type ApiModel } from './helpers/api-model.ts';

type Mapping = { field: keyof BuildOptions; argv: string[] } | { cliOnly: string };

/** Every `lading build` option: the BuildOptions field it sets (and argv that sets it), or why it has none. */
const CLI_TO_LIBRARY: Record<string, Mapping> = {
  file: { field: 'file', argv: ['-f', 'other.Dockerfile'] },
  tag: { field: 'tags', argv: ['-t', 'example.com/app:1'] },
  'build-arg': { field: 'buildArgs', argv: ['--build-arg', 'A=1'] },
  target: { field: 'target', argv: ['--target', 'builder'] },
  platform: { field: 'platform', argv: ['--platform', 'linux/arm64'] },
  output: { field: 'outputs', argv: ['-o', 'type=oci,dest=out'] },
  push: { field: 'push', argv: ['--push'] },
  'build-context': { field: 'buildContexts', argv: ['--build-context', 'base=oci-layout://dir'] },
  label: { field: 'labels', argv: ['--label', 'a=b'] },
  secret: { field: 'secrets', argv: ['--secret', `id=npm,src=${process.execPath}`] },
  sandbox: { field: 'sandbox', argv: ['--sandbox', 'proot'] },
  network: { field: 'network', argv: ['--network', 'none'] },
  annotation: { field: 'annotations', argv: ['--annotation', 'a=b'] },
  'annotate-vcs': { field: 'annotateVcs', argv: ['--annotate-vcs'] },
  sbom: { field: 'sbom', argv: ['--sbom=true'] },
  provenance: { field: 'provenance', argv: ['--provenance=max'] },
  'attest-as': { field: 'attestAs', argv: ['--attest-as', 'referrers'] },
  'cache-dir': { field: 'cacheDir', argv: ['--cache-dir', 'cache'] },
  'no-cache': { field: 'noCache', argv: ['--no-cache'] },
  'no-cache-filter': { field: 'noCacheFilter', argv: ['--no-cache-filter', 'builder'] },
  'cache-from': { field: 'cacheFrom', argv: ['--cache-from', 'type=registry,ref=example.com/cache'] },
  'cache-to': { field: 'cacheTo', argv: ['--cache-to', 'type=registry,ref=example.com/cache'] },
  'cache-repo': { field: 'cacheRepo', argv: ['--cache-repo', 'example.com/cache'] },
  explain: { field: 'explain', argv: ['--explain'] },
  compression: { field: 'compression', argv: ['--compression', 'zstd'] },
  'compression-level': { field: 'compressionLevel', argv: ['--compression-level', '3'] },
  format: { field: 'format', argv: ['--format', 'docker'] },
  'insecure-registry': { field: 'insecureRegistries', argv: ['--insecure-registry', 'reg.local:5000'] },
  'registry-ca': { field: 'registryCa', argv: ['--registry-ca', 'ca.pem'] },
  'chunk-size': { field: 'chunkSize', argv: ['--chunk-size', '8MiB'] },
  iidfile: { cliOnly: 'the CLI writes BuildResult.digest to the file' },
  'metadata-file': { cliOnly: 'the CLI writes buildx-style JSON made from the BuildResult' },
  quiet: { cliOnly: 'progress rendering: the library calls onEvent and prints nothing' },
  progress: { cliOnly: 'progress rendering: the library calls onEvent and prints nothing' },
  help: { cliOnly: 'prints the usage' },
};

/** BuildOptions fields with no flag of their own, and how a CLI user gets the same. */
const LIBRARY_ONLY: Partial<Record<keyof BuildOptions, string>> = {
  context: 'the positional CONTEXT argument',
  sourceDateEpoch: 'the SOURCE_DATE_EPOCH environment variable',
  signal: 'SIGINT / SIGTERM',
  onEvent: '--progress',
  credentials: 'LADING_REGISTRY_AUTH or docker config.json (docs/auth.md)',
  concurrency: 'not exposed: the default (4 blobs at once) suits CI runners',
};

let api: ApiModel;
test.before(() => {
  api = loadApi();
});

function parsed(argv: string[]): BuildOptions {
  const { values, positionals } = parseArgs({ args: [...argv, 'ctx'], options: parseArgsConfig(BUILD_OPTIONS), allowPositionals: true, strict: true });
  return buildOptions(values as Record<string, unknown>, positionals);
}

test('every `lading build` option is accounted for', (t) => {
  t.deepEqual(Object.keys(CLI_TO_LIBRARY).sort(), BUILD_OPTIONS.map((o) => o.name).sort(), 'add the new option to CLI_TO_LIBRARY (a BuildOptions field, or why it has none)');
});

test('each flag sets its BuildOptions field through buildOptions(), the one place the CLI makes options', (t) => {
  const without = parsed([]);
  for (const [name, m] of Object.entries(CLI_TO_LIBRARY)) {
    if ('cliOnly' in m) continue;
    const options = parsed(m.argv);
    t.not(options[m.field], undefined, `--${name} sets ${m.field}`);
    t.notDeepEqual(options[m.field], without[m.field], `--${name} changes ${m.field}`);
  }
  t.is(parsed([]).context, 'ctx');
});

test('every BuildOptions field is reachable from the CLI, or says why not', (t) => {
  const fields = api.properties('BuildOptions').map((p) => p.name).sort();
  const mapped = Object.values(CLI_TO_LIBRARY).flatMap((m) => ('field' in m ? [m.field as string] : []));
  const covered = new Set([...mapped, ...Object.keys(LIBRARY_ONLY)]);
  t.deepEqual(fields.filter((f) => !covered.has(f)), [], 'a new BuildOptions field needs a CLI flag (or an entry in LIBRARY_ONLY)');
  t.deepEqual([...covered].filter((f) => !fields.includes(f)), [], 'no mapping names a field that does not exist');
});

/** The option and result types of the public functions; a new one must be added here (and documented). */
const DOCUMENTED_TYPES = [
  'BuildOptions', 'BuildResult', 'PlatformImage', 'StepReport', 'StepRef', 'OutputSpec',
  'RegistryOptions', 'TransferOptions', 'PullOptions', 'PullResult', 'InspectResult', 'PushResult',
  'CacheDirOption', 'PruneOptions', 'CacheListing', 'PruneReport', 'VerifyReport', 'Image', 'ImageIndex',
];
const FUNCTIONS = ['build', 'push', 'pull', 'inspect', 'copy', 'cacheList', 'cachePrune', 'cacheVerify'];

test('the public functions have doc comments and use only documented option and result types', (t) => {
  for (const name of FUNCTIONS) {
    const symbol = api.checker.getAliasedSymbol(api.exports.get(name)!);
    t.true(api.doc(symbol).length > 20, `${name} has a doc comment`);
    for (const type of api.signatureTypes(name)) t.true(DOCUMENTED_TYPES.includes(type), `${name} uses ${type}: add it to DOCUMENTED_TYPES`);
    t.true(api.exports.has(name));
  }
  for (const type of DOCUMENTED_TYPES) t.true(api.exports.has(type), `${type} is exported from src/index.ts`);
});

test('every field of every option and result type has a doc comment', (t) => {
  const missing: string[] = [];
  for (const type of DOCUMENTED_TYPES) {
    if (type === 'OutputSpec') continue; // a union of small object types, documented per member
    for (const p of api.properties(type)) if (!api.doc(p)) missing.push(`${type}.${p.name}`);
  }
  t.deepEqual(missing, []);
});
