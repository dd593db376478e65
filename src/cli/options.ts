/**
 * The CLI's option definitions: the one source of truth for parsing, `--help` and the generated
 * CLI reference in docs/.
 */

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

export const BUILD_OPTIONS: OptionDef[] = [
  { name: 'file', short: 'f', type: 'string', value: 'FILE', description: 'The Dockerfile (default: CONTEXT/Dockerfile)', peers: { buildx: '-f, --file', kaniko: '--dockerfile' } },
  { name: 'tag', short: 't', type: 'string', multiple: true, value: 'NAME[:TAG]', description: 'Name the image (repeatable)', peers: { buildx: '-t, --tag', kaniko: '--destination' } },
  { name: 'build-arg', type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Set a build argument (repeatable; KEY alone takes it from the environment)', peers: { buildx: '--build-arg', kaniko: '--build-arg' } },
  { name: 'target', type: 'string', value: 'STAGE', description: 'Build this stage instead of the last', peers: { buildx: '--target', kaniko: '--target' } },
  { name: 'platform', type: 'string', value: 'OS/ARCH[/VARIANT]', description: 'Platform to build for (default: this machine)', peers: { buildx: '--platform', kaniko: '--custom-platform' } },
  { name: 'output', short: 'o', type: 'string', multiple: true, value: 'type=TYPE,dest=PATH', description: 'Where the image goes: type=oci,dest=DIR or type=docker,dest=FILE.tar (repeatable)', peers: { buildx: '-o, --output', kaniko: '--tar-path / --oci-layout-path' } },
  { name: 'build-context', type: 'string', multiple: true, value: 'NAME=oci-layout://DIR', description: 'A named context usable in FROM and COPY --from (repeatable)', peers: { buildx: '--build-context' } },
  { name: 'label', type: 'string', multiple: true, value: 'KEY=VALUE', description: 'Add a label to the image (repeatable)', peers: { buildx: '--label', kaniko: '--label' } },
  { name: 'cache-dir', type: 'string', value: 'DIR', description: 'Folder of the layer store and cache (default: $LADING_CACHE_DIR or $XDG_CACHE_HOME/lading)', peers: { kaniko: '--cache-dir' } },
  { name: 'no-cache', type: 'boolean', description: 'Run every step, ignoring the cache', peers: { buildx: '--no-cache', kaniko: '--cache=false' } },
  { name: 'no-cache-filter', type: 'string', multiple: true, value: 'STAGE', description: 'Run every step of this stage (repeatable)', peers: { buildx: '--no-cache-filter' } },
  { name: 'explain', type: 'boolean', description: 'Say, for every step that misses the cache, what changed since it last ran' },
  { name: 'compression', type: 'string', value: 'gzip|uncompressed', description: 'Layer compression (default gzip)', peers: { buildx: '-o compression=...', kaniko: '--compression' } },
  { name: 'compression-level', type: 'string', value: 'N', description: 'gzip level 1-9 (default 6)', peers: { buildx: '-o compression-level=...', kaniko: '--compression-level' } },
  { name: 'format', type: 'string', value: 'oci|docker', description: 'Media types of the manifest and layers (default oci)', peers: { buildx: '-o oci-mediatypes=...' } },
  { name: 'iidfile', type: 'string', value: 'FILE', description: 'Write the image digest to FILE', peers: { buildx: '--iidfile', kaniko: '--digest-file' } },
  { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the image digest', peers: { buildx: '-q, --quiet' } },
  { name: 'progress', type: 'string', value: 'auto|plain|quiet', description: 'How to show progress (default auto)', peers: { buildx: '--progress', kaniko: '--verbosity' } },
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
  { name: 'cache', usage: 'lading cache ls|prune|verify [OPTIONS]', summary: 'List, prune or verify the local layer cache', options: CACHE_OPTIONS },
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
