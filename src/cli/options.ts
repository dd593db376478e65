/**
 * The CLI's option definitions: the one source of truth for parsing, `--help` and the generated
 * CLI reference in docs/.
 */
import { parseArgs } from 'node:util';
import { ERROR_CODES, LadingError } from '../index.ts';

export interface OptionDef {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  multiple?: boolean;
  /** Shown in help as `--name VALUE`. */
  value?: string;
  description: string;
  /** Equivalent flags in peers, for the migration table. */
  peers?: { buildx?: string; kaniko?: string };
}

export interface CommandDef {
  name: string;
  usage: string;
  summary: string;
  options: OptionDef[];
}

const common: OptionDef[] = [
  { name: 'help', short: 'h', type: 'boolean', description: 'Show help for this command' },
];

/** How to reach registries; shared by every command that talks to one. */
export const REGISTRY_OPTIONS: OptionDef[] = [
  { name: 'insecure-registry', type: 'string', multiple: true, value: 'HOST[:PORT]', description: 'Allow plain http or unverified TLS for this registry (repeatable; loopback is always allowed)', peers: { kaniko: '--insecure-registry' } },
  { name: 'registry-ca', type: 'string', value: 'FILE', description: 'PEM file of extra certificate authorities for registries', peers: { kaniko: '--registry-certificate' } },
  { name: 'chunk-size', type: 'string', value: 'SIZE', description: 'Largest upload request; bigger blobs go in chunks (default 64MiB)' },
];

export const BUILD_OPTIONS: OptionDef[] = [
  { name: 'file', short: 'f', type: 'string', value: 'FILE', description: 'The Dockerfile (default: CONTEXT/Dockerfile)', peers: { buildx: '-f, --file', kaniko: '--dockerfile' } },
  { name: 'tag', short: 't', type: 'string', multiple: true, value: 'NAME[:TAG]', description: 'Name the image (repeatable)', peers: { buildx: '-t, --tag', kaniko: '--destination' } },
  { name: 'build-arg', type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Set a build argument (repeatable; KEY alone takes it from the environment)', peers: { buildx: '--build-arg', kaniko: '--build-arg' } },
  { name: 'target', type: 'string', value: 'STAGE', description: 'Build this stage instead of the last', peers: { buildx: '--target', kaniko: '--target' } },
  { name: 'platform', type: 'string', multiple: true, value: 'OS/ARCH[/VARIANT][,...]', description: 'Platforms to build for, comma-separated or repeated: one image each, joined in an index (default: this machine)', peers: { buildx: '--platform', kaniko: '--custom-platform' } },
  { name: 'output', short: 'o', type: 'string', multiple: true, value: 'type=TYPE[,dest=PATH]', description: 'Where the image goes: type=oci,dest=DIR (an OCI folder; tar=true or a .tar dest for an OCI archive), type=docker,dest=FILE.tar, type=local,dest=DIR (the root file system) or type=registry (repeatable)', peers: { buildx: '-o, --output', kaniko: '--tar-path / --oci-layout-path' } },
  { name: 'push', type: 'boolean', description: 'Push the image to every -t tag (same as --output type=registry)', peers: { buildx: '--push', kaniko: '(default; --no-push to skip)' } },
  { name: 'build-context', type: 'string', multiple: true, value: 'NAME=oci-layout://DIR', description: 'A named context usable in FROM and COPY --from (repeatable)', peers: { buildx: '--build-context' } },
  { name: 'label', type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Add a label to the image (repeatable)', peers: { buildx: '--label', kaniko: '--label' } },
  { name: 'secret', type: 'string', multiple: true, value: 'id=ID[,src=FILE|env=VAR]', description: 'A secret for RUN --mount=type=secret,id=ID (repeatable); never in a layer, cache key or log', peers: { buildx: '--secret', kaniko: '(none)' } },
  { name: 'sandbox', type: 'string', value: 'bwrap|proot|chroot', description: 'How RUN steps are isolated (default: the best this machine allows)' },
  { name: 'network', type: 'string', value: 'default|none|host', description: 'The network of RUN steps without their own --network (default: default, the host\'s)', peers: { buildx: '--network', kaniko: '(none)' } },
  { name: 'annotation', type: 'string', multiple: true, value: '[index:|manifest:]KEY=VALUE', description: 'Add an annotation to the manifests (default) or the index (repeatable)', peers: { buildx: '--annotation' } },
  { name: 'annotate-vcs', type: 'boolean', description: 'Annotate org.opencontainers.image.source, .revision and .created from the git checkout of the context' },
  { name: 'sbom', type: 'string', value: '[=true|false]', description: 'Attach an SPDX SBOM of each platform\'s image (default: on with --push)', peers: { buildx: '--sbom' } },
  { name: 'provenance', type: 'string', value: 'min|max|false', description: 'Attach SLSA provenance; max adds build arguments and labels (default: min with --push)', peers: { buildx: '--provenance' } },
  { name: 'attest-as', type: 'string', value: 'index|referrers', description: 'Attach attestations in the image index (default, as BuildKit) or as OCI 1.1 referrers' },
  { name: 'cache-dir', type: 'string', value: 'DIR', description: 'Folder of the layer store and cache (default: $LADING_CACHE_DIR or $XDG_CACHE_HOME/lading)', peers: { kaniko: '--cache-dir' } },
  { name: 'no-cache', type: 'boolean', description: 'Run every step, ignoring the cache', peers: { buildx: '--no-cache', kaniko: '--cache=false' } },
  { name: 'no-cache-filter', type: 'string', multiple: true, value: 'STAGE', description: 'Run every step of this stage (repeatable)', peers: { buildx: '--no-cache-filter' } },
  { name: 'cache-from', type: 'string', multiple: true, value: 'type=registry,ref=REPO[:TAG]', description: 'Read layers from a shared cache in a registry (repeatable, tried in order)', peers: { buildx: '--cache-from', kaniko: '--cache-repo' } },
  { name: 'cache-to', type: 'string', multiple: true, value: 'type=registry,ref=REPO[:TAG][,mode=max]', description: 'Write every step to a shared cache in a registry (repeatable)', peers: { buildx: '--cache-to', kaniko: '--cache-repo' } },
  { name: 'cache-repo', type: 'string', value: 'REPO', description: "kaniko's form: --cache-from and --cache-to the same repository", peers: { kaniko: '--cache-repo' } },
  { name: 'explain', type: 'boolean', description: 'Say, for every step that misses the cache, what changed since it last ran' },
  { name: 'compression', type: 'string', value: 'gzip|zstd|uncompressed', description: 'Layer compression (default gzip)', peers: { buildx: '-o compression=...', kaniko: '--compression' } },
  { name: 'compression-level', type: 'string', value: 'N', description: 'gzip level 1-9 (default 6), zstd level 1-19 (default 3)', peers: { buildx: '-o compression-level=...', kaniko: '--compression-level' } },
  { name: 'format', type: 'string', value: 'oci|docker', description: 'Media types of the manifest and layers (default oci)', peers: { buildx: '-o oci-mediatypes=...' } },
  { name: 'iidfile', type: 'string', value: 'FILE', description: 'Write the image digest (the index digest for several platforms) to FILE', peers: { buildx: '--iidfile', kaniko: '--digest-file' } },
  { name: 'metadata-file', type: 'string', value: 'FILE', description: 'Write the digest, tags and per-platform descriptors to FILE as JSON', peers: { buildx: '--metadata-file', kaniko: '--image-name-with-digest-file' } },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the image digest', peers: { buildx: '-q, --quiet' } },
  { name: 'progress', type: 'string', value: 'auto|tty|plain|json|quiet', description: 'How to show progress on stderr: a live view (tty), one line per event (plain), JSON lines (json) or nothing; auto is tty on a terminal, else plain', peers: { buildx: '--progress', kaniko: '--verbosity' } },
  ...REGISTRY_OPTIONS,
  ...common,
];

export const PUSH_OPTIONS: OptionDef[] = [
  ...REGISTRY_OPTIONS,
  { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the digest' },
  { name: 'progress', type: 'string', value: 'auto|tty|plain|json|quiet', description: 'How to show progress on stderr (default auto: tty on a terminal, else plain)' },
  ...common,
];
export const PULL_OPTIONS: OptionDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Platform to choose from an index (default: this machine)' },
  { name: 'output', short: 'o', type: 'string', value: 'DIR', description: 'Also write the image into this OCI layout folder' },
  { name: 'cache-dir', type: 'string', value: 'DIR', description: 'Folder of the layer store' },
  ...PUSH_OPTIONS,
];
export const INSPECT_OPTIONS: OptionDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Platform to show from an index (default: this machine)' },
  { name: 'raw', type: 'boolean', description: 'Print the manifest (or index) exactly as the registry serves it' },
  { name: 'config', type: 'boolean', description: 'Print the image config' },
  ...REGISTRY_OPTIONS,
  ...common,
];
export const COPY_OPTIONS: OptionDef[] = [
  { name: 'all', short: 'a', type: 'boolean', description: 'Copy every platform of an index, and the index itself' },
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Platform to copy from an index (default: this machine)' },
  ...PUSH_OPTIONS,
];

export const SBOM_OPTIONS: OptionDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Only the image of this platform' },
  { name: 'statement', type: 'boolean', description: 'Print the whole in-toto statement, not just its predicate' },
  { name: 'packages', type: 'boolean', description: 'Print one package a line: name, version, purl' },
  ...REGISTRY_OPTIONS,
  ...common,
];
export const PROVENANCE_OPTIONS: OptionDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Only the image of this platform' },
  { name: 'statement', type: 'boolean', description: 'Print the whole in-toto statement, not just its predicate' },
  ...REGISTRY_OPTIONS,
  ...common,
];
export const ATTEST_OPTIONS: OptionDef[] = [
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Only the image of this platform' },
  { name: 'json', type: 'boolean', description: 'Print the result as JSON' },
  ...REGISTRY_OPTIONS,
  ...common,
];

export const CACHE_OPTIONS: OptionDef[] = [
  { name: 'cache-dir', type: 'string', value: 'DIR', description: 'Folder of the layer store and cache' },
  { name: 'keep-storage', type: 'string', value: 'SIZE', description: 'prune: keep at most SIZE (e.g. 10GB), least recently used first', peers: { buildx: 'builder prune --keep-storage' } },
  { name: 'older-than', type: 'string', value: 'AGE', description: 'prune: remove what was not used for AGE (e.g. 24h, 7d)', peers: { buildx: 'builder prune --filter until=' } },
  { name: 'repair', type: 'boolean', description: 'verify: remove corrupt blobs and the records that point at them' },
  { name: 'json', type: 'boolean', description: 'Print the result as JSON' },
  ...common,
];

export const COMMANDS: CommandDef[] = [
  { name: 'build', usage: 'lading build [OPTIONS] [CONTEXT]', summary: 'Build an image from a Dockerfile', options: BUILD_OPTIONS },
  { name: 'push', usage: 'lading push [OPTIONS] DIR[:TAG] REF...', summary: 'Push an image from an OCI layout folder to a registry', options: PUSH_OPTIONS },
  { name: 'pull', usage: 'lading pull [OPTIONS] REF', summary: 'Pull an image into the store (and an OCI folder with -o)', options: PULL_OPTIONS },
  { name: 'inspect', usage: 'lading inspect [OPTIONS] REF', summary: "Show an image's manifest and config without downloading layers", options: INSPECT_OPTIONS },
  { name: 'copy', usage: 'lading copy [OPTIONS] SRC DST', summary: 'Copy an image between registries without touching disk', options: COPY_OPTIONS },
  { name: 'cache', usage: 'lading cache ls|prune|verify [OPTIONS]', summary: 'List, prune or verify the local layer cache', options: CACHE_OPTIONS },
  { name: 'sbom', usage: 'lading sbom [OPTIONS] REF|oci:DIR[:TAG]', summary: 'Print the SBOM attached to an image', options: SBOM_OPTIONS },
  { name: 'provenance', usage: 'lading provenance [OPTIONS] REF|oci:DIR[:TAG]', summary: 'Print the provenance attached to an image', options: PROVENANCE_OPTIONS },
  { name: 'attest', usage: 'lading attest verify|ls [OPTIONS] REF|oci:DIR[:TAG]', summary: "Check that an image's attestations describe its manifests", options: ATTEST_OPTIONS },
];

export const GLOBAL_OPTIONS: OptionDef[] = [
  { name: 'version', short: 'v', type: 'boolean', description: 'Print the version' },
  ...common,
];

export function parseArgsConfig(defs: OptionDef[]): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const d of defs) {
    out[d.name] = { type: d.type, ...(d.short ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}) };
  }
  return out;
}

export function helpText(cmd: CommandDef): string {
  const rows = cmd.options.map((o) => {
    const flags = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.value ? ` ${o.value}` : ''}`;
    return `  ${flags.padEnd(38)} ${o.description}`;
  });
  return `Usage: ${cmd.usage}\n\n${cmd.summary}\n\nOptions:\n${rows.join('\n')}\n`;
}

/** A usage error (exit status 2), with a pointer to `--help` unless a better hint is given. */
export function usage(message: string, hint?: string): LadingError {
  return new LadingError(ERROR_CODES.USAGE, message, { hint: hint ?? 'run `lading --help` for usage' });
}

/** One command's arguments against its option definitions; an unknown or malformed flag is a usage error. */
export function parseCommand(args: string[], defs: OptionDef[]): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: parseArgsConfig(defs), allowPositionals: true, strict: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    throw usage((err as Error).message.replace(/\. To specify.*$/s, ''));
  }
}
