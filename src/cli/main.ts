/**
 * The `lading` command: argv → library calls → exit status. Imports only the public API.
 */
import { writeFile } from 'node:fs/promises';
import { build, cacheList, cachePrune, cacheVerify, copy, inspect, pull, push, ERROR_CODES, isLadingError, LadingError, VERSION, type BuildOptions, type BuildResult, type ErrorCode, type OutputSpec, type RegistryOptions } from '../index.ts';
import { BUILD_OPTIONS, CACHE_OPTIONS, COPY_OPTIONS, INSPECT_OPTIONS, PULL_OPTIONS, PUSH_OPTIONS, COMMANDS, GLOBAL_OPTIONS, helpText, parseCommand, usage, type OptionDef } from './options.ts';
import { createRenderer, formatBytes, isProgressMode, PROGRESS_MODES, type Renderer } from './progress.ts';
import { attestCommand, attestationBuildOptions, normalizeAttestFlags, provenanceCommand, sbomCommand } from './attest.ts';

/** Exit statuses: stable, documented in docs/cli.md. */
export const EXIT = { OK: 0, BUILD: 1, USAGE: 2, REGISTRY: 3, INTERNAL: 70, INTERRUPTED: 130 } as const;

export function exitStatusFor(code: ErrorCode): number {
  switch (code) {
    case ERROR_CODES.USAGE:
      return EXIT.USAGE;
    case ERROR_CODES.REGISTRY:
    case ERROR_CODES.REGISTRY_AUTH:
    case ERROR_CODES.REFERENCE:
      return EXIT.REGISTRY;
    case ERROR_CODES.INTERRUPTED:
      return EXIT.INTERRUPTED;
    case ERROR_CODES.INTERNAL:
      return EXIT.INTERNAL;
    default:
      return EXIT.BUILD;
  }
}

function globalHelp(): string {
  const cmds = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n');
  return `Usage: lading [--version] [--help] COMMAND [OPTIONS]\n\nBuild OCI container images without a Docker daemon.\n\nCommands:\n${cmds}\n\nRun 'lading COMMAND --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(globalHelp());
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`lading ${VERSION}\n`);
    return EXIT.OK;
  }
  void GLOBAL_OPTIONS;
  const controller = new AbortController();
  // The first Ctrl-C cancels (temporary files removed, exit 130); a second one leaves at once.
  // `on`, not `once`: with no listener of ours left, signal-exit (used to restore the cursor)
  // would kill the process before the build could clean up.
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(EXIT.INTERRUPTED);
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    switch (command) {
      case 'build':
        return await buildCommand(rest, controller.signal);
      case 'cache':
        return await cacheCommand(rest);
      case 'push':
        return await pushCommand(rest, controller.signal);
      case 'pull':
        return await pullCommand(rest, controller.signal);
      case 'inspect':
        return await inspectCommand(rest, controller.signal);
      case 'copy':
        return await copyCommand(rest, controller.signal);
      case 'sbom':
        return await sbomCommand(rest, { signal: controller.signal, registryOptions });
      case 'provenance':
        return await provenanceCommand(rest, { signal: controller.signal, registryOptions });
      case 'attest':
        return await attestCommand(rest, { signal: controller.signal, registryOptions });
      default:
        throw usage(`unknown command "${command}"`, `commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
    }
  } catch (err) {
    const status = isLadingError(err) ? exitStatusFor(err.code) : EXIT.INTERNAL;
    // The live view is erased (and the cursor shown) before the error is printed under it.
    if (activeRenderer?.fail(err, status)) return status;
    return reportError(err);
  } finally {
    activeRenderer = undefined;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The running command's progress renderer, so a failure can close it before the error shows. */
let activeRenderer: Renderer | undefined;

/** `--progress` and `-q` of a command → its renderer on stderr. */
function progressFor(v: Record<string, unknown>): Renderer {
  const requested = (v.progress as string | undefined) ?? 'auto';
  if (!isProgressMode(requested)) throw usage(`unsupported --progress "${requested}"`, `use ${PROGRESS_MODES.join(', ')}`);
  activeRenderer = createRenderer(v.quiet ? 'quiet' : requested, process.stderr);
  return activeRenderer;
}

function reportError(err: unknown): number {
  if (isLadingError(err)) {
    process.stderr.write(`error: ${err.describe()}\n`);
    return exitStatusFor(err.code);
  }
  process.stderr.write(`internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT.INTERNAL;
}

/** The registry flags every command shares. */
function registryOptions(v: Record<string, unknown>): RegistryOptions {
  const out: RegistryOptions = {};
  const insecure = v['insecure-registry'] as string[] | undefined;
  if (insecure?.length) out.insecureRegistries = insecure;
  if (v['registry-ca']) out.registryCa = v['registry-ca'] as string;
  const chunk = v['chunk-size'] as string | undefined;
  if (chunk !== undefined) {
    const bytes = parseByteSize(chunk);
    if (bytes === undefined || bytes < 1024) throw usage(`invalid --chunk-size "${chunk}"`, 'write a size such as 8MiB or 100MB');
    out.chunkSize = bytes;
  }
  return out;
}

function parseByteSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)b?$/i.exec(text.trim());
  if (!m) return undefined;
  const power = m[2] === '' ? 0 : 'kmgt'.indexOf(m[2]!.toLowerCase()) + 1;
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** power);
}

function keyValues(list: string[] | undefined, what: string, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq < 0) {
      if (fromEnv && process.env[item] !== undefined) out[item] = process.env[item]!;
      else if (!fromEnv) throw usage(`${what} "${item}" needs a value`, `write ${what} KEY=VALUE`);
      continue;
    }
    if (eq === 0) throw usage(`${what} "${item}" has no name`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function parseOutput(spec: string): OutputSpec {
  const fields: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw usage(`invalid --output "${spec}"`, 'write --output type=oci,dest=DIR or type=docker,dest=FILE.tar');
    fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const type = fields.type;
  const dest = fields.dest;
  if (type === 'registry' || type === 'image') return { type: 'registry' };
  if (type === 'oci' && dest) return fields.tar === undefined ? { type, dest } : { type, dest, tar: fields.tar === 'true' };
  if ((type === 'docker' || type === 'local') && dest) return { type, dest };
  if (type !== 'oci' && type !== 'docker' && type !== 'local') throw usage(`unsupported output type "${type ?? ''}"`, 'use type=oci, type=docker, type=local or type=registry');
  throw usage(`--output type=${type} needs dest=PATH`);
}

async function buildCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseCommand(normalizeAttestFlags(args), BUILD_OPTIONS);
  if (v.help) {
    process.stdout.write(helpText(COMMANDS.find((c) => c.name === 'build')!));
    return EXIT.OK;
  }
  const renderer = progressFor(v);
  const options: BuildOptions = { ...buildOptions(v, positionals), signal, onEvent: renderer.onEvent };
  const result = await build(options);
  renderer.done({ kind: 'build', result });
  const iidfile = v.iidfile as string | undefined;
  if (iidfile) await writeFile(iidfile, result.digest);
  const metadataFile = v['metadata-file'] as string | undefined;
  if (metadataFile) await writeFile(metadataFile, `${JSON.stringify(buildMetadata(result), null, 2)}\n`);
  process.stdout.write(`${result.digest}\n`);
  return EXIT.OK;
}

/**
 * The parsed `lading build` flags as library options (all but `signal` and `onEvent`): the one
 * place a CLI option becomes a BuildOptions field (test/api/cli-parity.test.ts checks them all).
 */
export function buildOptions(v: Record<string, unknown>, positionals: string[]): BuildOptions {
  if (positionals.length > 1) throw usage(`build takes one context folder, got ${positionals.length}: ${positionals.join(' ')}`);
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const list = (k: string): string[] | undefined => v[k] as string[] | undefined;
  const compression = str('compression');
  if (compression !== undefined && !['gzip', 'zstd', 'uncompressed', 'none'].includes(compression)) {
    throw usage(`unsupported --compression "${compression}"`, 'use gzip, zstd or uncompressed');
  }
  const level = str('compression-level');
  const maxLevel = compression === 'zstd' ? 19 : 9;
  if (level !== undefined && (!/^\d+$/.test(level) || Number(level) < 1 || Number(level) > maxLevel)) {
    throw usage(`--compression-level must be 1 to ${maxLevel}, not "${level}"`);
  }
  const format = str('format');
  if (format !== undefined && format !== 'oci' && format !== 'docker') throw usage(`unsupported --format "${format}"`, 'use oci or docker');
  const outputs = (list('output') ?? []).map(parseOutput);
  const buildContexts = keyValues(list('build-context'), '--build-context', false);
  return {
    ...registryOptions(v),
    push: Boolean(v.push),
    context: positionals[0] ?? '.',
    file: str('file'),
    tags: list('tag') ?? [],
    buildArgs: keyValues(list('build-arg'), '--build-arg', true),
    target: str('target'),
    platform: list('platform'),
    annotations: list('annotation'),
    annotateVcs: Boolean(v['annotate-vcs']),
    outputs,
    buildContexts,
    cacheDir: str('cache-dir'),
    noCache: Boolean(v['no-cache']),
    noCacheFilter: list('no-cache-filter'),
    explain: Boolean(v.explain),
    cacheFrom: list('cache-from'),
    cacheTo: list('cache-to'),
    cacheRepo: str('cache-repo'),
    compression: compression === undefined ? undefined : compression === 'uncompressed' ? 'none' : (compression as 'gzip' | 'zstd' | 'none'),
    compressionLevel: level === undefined ? undefined : Number(level),
    format: format as BuildOptions['format'],
    labels: keyValues(list('label'), '--label', false),
    secrets: parseSecrets(list('secret') ?? []),
    sandbox: parseSandbox(str('sandbox')),
    network: parseNetwork(str('network')),
    ...attestationBuildOptions(v),
  };
}

async function cacheCommand(args: string[]): Promise<number> {
  const { values: v, positionals } = parseCommand(args, CACHE_OPTIONS);
  const def = COMMANDS.find((c) => c.name === 'cache')!;
  if (v.help) {
    process.stdout.write(helpText(def));
    return EXIT.OK;
  }
  const [action, ...extra] = positionals;
  if (extra.length > 0) throw usage(`unexpected argument "${extra[0]}"`);
  const cacheDir = v['cache-dir'] as string | undefined;
  const json = Boolean(v.json);
  const print = (value: unknown, text: string): void => {
    process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text);
  };
  switch (action) {
    case 'ls': {
      const listing = await cacheList({ cacheDir });
      const lines = listing.records.map((r) => `${r.key.slice(7, 19)}  ${r.kind.padEnd(7)}  ${(r.layer ?? 'no layer').slice(0, 19).padEnd(19)}  ${formatBytes(r.size).padStart(10)}  ${r.lastUsed.toISOString()}`);
      print(listing, `${['KEY           KIND     LAYER                      SIZE  LAST USED', ...lines].join('\n')}\n${listing.records.length} records, ${listing.blobs} blobs, ${formatBytes(listing.blobBytes)}\n`);
      return EXIT.OK;
    }
    case 'prune': {
      const report = await cachePrune({ cacheDir, keepStorage: v['keep-storage'] as string | undefined, olderThan: v['older-than'] as string | undefined });
      print(report, `removed ${report.recordsRemoved} records and ${report.blobsRemoved} blobs, freed ${formatBytes(report.bytesFreed)}, ${formatBytes(report.bytesKept)} kept\n`);
      return EXIT.OK;
    }
    case 'verify': {
      const report = await cacheVerify({ cacheDir, repair: Boolean(v.repair) });
      const bad = report.corrupt.length + report.danglingRecords.length + report.strays.length;
      const text = [
        `${report.blobs} blobs checked: ${report.corrupt.length} corrupt, ${report.danglingRecords.length} records without their layer, ${report.strays.length} stray files`,
        ...report.corrupt.map((d) => `corrupt: ${d}`),
        ...report.danglingRecords.map((k) => `dangling record: ${k}`),
        ...report.strays.map((s) => `stray: ${s}`),
        bad > 0 ? (report.repaired ? 'repaired' : 'run `lading cache verify --repair` to remove them') : 'the store is clean',
      ].join('\n');
      print(report, `${text}\n`);
      return bad > 0 && !report.repaired ? EXIT.BUILD : EXIT.OK;
    }
    default:
      throw usage(action === undefined ? 'cache needs an action' : `unknown cache action "${action}"`, 'use lading cache ls, prune or verify');
  }
}

function commandHelp(name: string, v: Record<string, unknown>): boolean {
  if (!v.help) return false;
  process.stdout.write(helpText(COMMANDS.find((c) => c.name === name)!));
  return true;
}

async function pushCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseCommand(args, PUSH_OPTIONS);
  if (commandHelp('push', v)) return EXIT.OK;
  const [source, ...refs] = positionals;
  if (!source || refs.length === 0) throw usage('push needs an OCI layout folder and at least one reference', 'lading push out/app registry.example.com/team/app:1.0');
  const renderer = progressFor(v);
  const result = await push(source, refs, { ...registryOptions(v), signal, onEvent: renderer.onEvent });
  renderer.done({ kind: 'push', result });
  process.stdout.write(`${result.digest}\n`);
  return EXIT.OK;
}

async function pullCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseCommand(args, PULL_OPTIONS);
  if (commandHelp('pull', v)) return EXIT.OK;
  if (positionals.length !== 1) throw usage('pull needs one reference', 'lading pull docker.io/library/alpine:3.20');
  const renderer = progressFor(v);
  const result = await pull(positionals[0]!, {
    ...registryOptions(v),
    platform: v.platform as string | undefined,
    dest: v.output as string | undefined,
    cacheDir: v['cache-dir'] as string | undefined,
    signal,
    onEvent: renderer.onEvent,
  });
  renderer.done({ kind: 'pull', result });
  process.stdout.write(`${result.digest}\n`);
  return EXIT.OK;
}

async function inspectCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseCommand(args, INSPECT_OPTIONS);
  if (commandHelp('inspect', v)) return EXIT.OK;
  if (positionals.length !== 1) throw usage('inspect needs one reference');
  const result = await inspect(positionals[0]!, { ...registryOptions(v), platform: v.platform as string | undefined, signal });
  if (v.raw) process.stdout.write(`${JSON.stringify(result.index ?? result.manifest, null, 2)}\n`);
  else if (v.config) process.stdout.write(`${JSON.stringify(result.config, null, 2)}\n`);
  else {
    const c = result.config.config ?? {};
    const summary = {
      Name: result.reference,
      Digest: result.indexDigest ?? result.digest,
      ManifestDigest: result.digest,
      Platforms: result.platforms,
      Created: result.config.created,
      Layers: result.manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      Env: c.Env,
      Entrypoint: c.Entrypoint,
      Cmd: c.Cmd,
      WorkingDir: c.WorkingDir,
      User: c.User,
      ExposedPorts: c.ExposedPorts ? Object.keys(c.ExposedPorts) : undefined,
      Labels: c.Labels,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  }
  return EXIT.OK;
}

async function copyCommand(args: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parseCommand(args, COPY_OPTIONS);
  if (commandHelp('copy', v)) return EXIT.OK;
  if (positionals.length !== 2) throw usage('copy needs a source and a destination reference');
  const renderer = progressFor(v);
  const result = await copy(positionals[0]!, positionals[1]!, {
    ...registryOptions(v),
    allPlatforms: Boolean(v.all),
    platform: v.platform as string | undefined,
    signal,
    onEvent: renderer.onEvent,
  });
  renderer.done({ kind: 'copy', result });
  process.stdout.write(`${result.digest}\n`);
  return EXIT.OK;
}

/** buildx's --metadata-file shape, plus lading's per-platform list. */
function buildMetadata(result: BuildResult): Record<string, unknown> {
  const item = result.index ?? result.image;
  const descriptor = result.index
    ? { mediaType: result.index.index.mediaType, digest: result.index.digest, size: result.index.indexBytes.length }
    : { mediaType: result.image.manifest.mediaType, digest: result.image.digest, size: result.image.manifestBytes.length };
  return {
    'containerimage.digest': item.digest,
    'containerimage.descriptor': descriptor,
    'image.name': result.tags.join(','),
    'lading.platforms': result.images.map((i) => ({
      platform: i.platform,
      digest: i.digest,
      size: i.image.manifestBytes.length,
      mediaType: i.image.manifest.mediaType,
      config: i.image.manifest.config.digest,
    })),
  };
}

/** buildx's `--secret id=ID,src=FILE` / `id=ID,env=VAR` (a bare `id=ID` reads the variable ID). */
function parseSecrets(specs: string[]): Record<string, { src?: string; env?: string }> {
  const out: Record<string, { src?: string; env?: string }> = {};
  for (const spec of specs) {
    const fields: Record<string, string> = {};
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw usage(`invalid --secret "${spec}"`, 'write --secret id=ID,src=FILE or --secret id=ID,env=VARIABLE');
      fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
    }
    if (!fields.id) throw usage(`--secret "${spec}" needs id=ID`);
    const src = fields.src ?? fields.source;
    out[fields.id] = src !== undefined ? { src } : fields.env !== undefined ? { env: fields.env } : {};
  }
  return out;
}

function parseNetwork(value: string | undefined): 'default' | 'none' | 'host' | undefined {
  if (value === undefined) return undefined;
  if (value === 'default' || value === 'none' || value === 'host') return value;
  throw usage(`unsupported --network "${value}"`, 'use default, none or host');
}

function parseSandbox(value: string | undefined): 'bwrap' | 'proot' | 'chroot' | undefined {
  if (value === undefined) return undefined;
  if (value === 'bwrap' || value === 'proot' || value === 'chroot') return value;
  throw usage(`unsupported --sandbox "${value}"`, 'use bwrap, proot or chroot');
}
