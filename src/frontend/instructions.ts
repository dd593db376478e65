/**
 * Parser nodes → typed commands (like BuildKit's `instructions` package): every instruction's
 * arity and flags are checked here, words stay unexpanded. Problems are collected so that one
 * run reports all of them.
 */
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type {
  ArgCommand,
  CmdCommand,
  Command,
  CopyCommand,
  EnvCommand,
  FromCommand,
  HealthcheckCommand,
  KeyValue,
  ListCommand,
  MountSpec,
  OnbuildCommand,
  RunCommand,
  SimpleCommand,
} from '../graph/types.ts';
import type { InstructionNode, ParsedDockerfile } from './parser.ts';
import { didYouMean } from './suggest.ts';

export const INSTRUCTIONS = [
  'from', 'run', 'cmd', 'entrypoint', 'label', 'maintainer', 'expose', 'env', 'add', 'copy', 'volume', 'user',
  'workdir', 'arg', 'onbuild', 'stopsignal', 'healthcheck', 'shell',
] as const;

export type ParsedCommand = Command | FromCommand;

/** Flags each instruction accepts; `true` marks flags that may repeat. */
const FLAGS: Record<string, Record<string, 'string' | 'bool' | 'multi'>> = {
  from: { platform: 'string' },
  run: { mount: 'multi', network: 'string', security: 'string' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'multi' },
  add: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'multi', unpack: 'bool' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const STAGE_NAME = /^[a-z][a-z0-9_.-]*$/;

export interface ConvertResult {
  commands: ParsedCommand[];
  errors: LadingError[];
}

/** Convert every node; errors are returned, not thrown, so the caller can report them together. */
export function convertNodes(parsed: ParsedDockerfile, lines: string[]): ConvertResult {
  const commands: ParsedCommand[] = [];
  const errors: LadingError[] = [];
  for (const node of parsed.nodes) {
    try {
      commands.push(convertNode(node, parsed.file, lines));
    } catch (err) {
      if (err instanceof LadingError) errors.push(err);
      else throw err;
    }
  }
  return { commands, errors };
}

export function locationOf(node: InstructionNode, file: string, lines: string[]): SourceLocation {
  return { file, line: node.startLine, column: node.column, text: lines[node.startLine - 1]?.replace(/\r$/, '') };
}

function fail(node: InstructionNode, file: string, lines: string[], message: string, hint?: string): never {
  throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, { location: locationOf(node, file, lines), hint });
}

export function convertNode(node: InstructionNode, file: string, lines: string[]): ParsedCommand {
  const keyword = node.keyword.toLowerCase();
  const location = locationOf(node, file, lines);
  const base = { location, original: node.original };
  const bad = (message: string, hint?: string): never => fail(node, file, lines, message, hint);
  const flags = parseFlags(node, keyword, bad);

  switch (keyword) {
    case 'from':
      return convertFrom(node, base, flags, bad);
    case 'run':
      return convertRun(node, base, flags, bad);
    case 'cmd':
    case 'entrypoint': {
      const cmd: CmdCommand = { kind: keyword, ...base, shellForm: !node.json, cmdLine: node.args.slice() };
      return cmd;
    }
    case 'env':
    case 'label': {
      const pairs = keyValues(node, keyword, bad);
      const cmd: EnvCommand = { kind: keyword, ...base, pairs };
      return cmd;
    }
    case 'maintainer': {
      if (node.args.length === 0) bad('MAINTAINER requires exactly one argument');
      // Some parsers hand MAINTAINER over as a label triple; take the value either way.
      const value = node.args.length === 3 && node.args[0] === 'maintainer' ? node.args[1]! : node.args.join(' ');
      const cmd: SimpleCommand = { kind: 'maintainer', ...base, value };
      return cmd;
    }
    case 'expose':
    case 'volume': {
      if (node.args.length === 0) bad(`${keyword.toUpperCase()} requires at least one argument`);
      const cmd: ListCommand = { kind: keyword, ...base, values: node.args.slice() };
      return cmd;
    }
    case 'shell': {
      if (!node.json) bad('SHELL requires the arguments to be in JSON form', 'write it as SHELL ["/bin/sh", "-c"]');
      if (node.args.length === 0) bad('SHELL requires at least one argument');
      const cmd: ListCommand = { kind: 'shell', ...base, values: node.args.slice() };
      return cmd;
    }
    case 'user':
    case 'workdir':
    case 'stopsignal': {
      if (node.args.length !== 1) bad(`${keyword.toUpperCase()} requires exactly one argument`);
      const cmd: SimpleCommand = { kind: keyword, ...base, value: node.args[0]! };
      return cmd;
    }
    case 'arg':
      return convertArg(node, base, bad);
    case 'add':
    case 'copy':
      return convertCopy(node, keyword, base, flags, bad);
    case 'onbuild':
      return convertOnbuild(node, base, bad);
    case 'healthcheck':
      return convertHealthcheck(node, base, flags, bad);
    default: {
      const suggestion = didYouMean(keyword.toUpperCase(), INSTRUCTIONS.map((i) => i.toUpperCase()));
      return bad(`unknown instruction: ${node.keyword.toUpperCase()}`, suggestion ?? `instructions are ${INSTRUCTIONS.map((i) => i.toUpperCase()).join(', ')}`);
    }
  }
}

type Bad = (message: string, hint?: string) => never;
type Base = { location: SourceLocation; original: string };
type Flags = Map<string, string[]>;

function parseFlags(node: InstructionNode, keyword: string, bad: Bad): Flags {
  const allowed = FLAGS[keyword] ?? {};
  const out: Flags = new Map();
  for (const raw of node.flags) {
    if (!raw.startsWith('--')) bad(`invalid flag "${raw}"`);
    const body = raw.slice(2);
    const eq = body.indexOf('=');
    const name = (eq < 0 ? body : body.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = allowed[name];
    if (kind === undefined) {
      const known = Object.keys(allowed).map((f) => `--${f}`);
      const suggestion = didYouMean(`--${name}`, known);
      bad(
        `unknown flag --${name} for ${keyword.toUpperCase()}`,
        suggestion ?? (known.length ? `${keyword.toUpperCase()} accepts ${known.join(', ')}` : `${keyword.toUpperCase()} takes no flags`),
      );
    }
    if (kind === 'bool') {
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') bad(`--${name} expects true or false, not "${value}"`);
      if (out.has(name)) bad(`duplicate flag --${name}`);
      out.set(name, [v]);
      continue;
    }
    if (value === undefined || (value === '' && kind !== 'multi')) {
      bad(`missing a value on flag --${name}`, `write it as --${name}=VALUE`);
    }
    if (kind === 'string' && out.has(name)) bad(`duplicate flag --${name}`);
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

function flag(flags: Flags, name: string): string | undefined {
  return flags.get(name)?.[0];
}

function boolFlag(flags: Flags, name: string): boolean | undefined {
  const v = flag(flags, name);
  return v === undefined ? undefined : v === 'true';
}

function convertFrom(node: InstructionNode, base: Base, flags: Flags, bad: Bad): FromCommand {
  const args = node.args;
  if (!(args.length === 1 || (args.length === 3 && args[1]!.toLowerCase() === 'as'))) {
    bad('FROM requires either one or three arguments', 'write FROM IMAGE or FROM IMAGE AS NAME');
  }
  const cmd: FromCommand = { kind: 'from', ...base, image: args[0]! };
  if (args.length === 3) {
    const name = args[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      bad(`invalid name for build stage: "${args[2]}"`, 'stage names start with a letter and contain only letters, digits, "-", "_" and "."');
    }
    cmd.stageName = name;
  }
  const platform = flag(flags, 'platform');
  if (platform !== undefined) cmd.platform = platform;
  return cmd;
}

function convertRun(node: InstructionNode, base: Base, flags: Flags, bad: Bad): RunCommand {
  if (node.args.length === 0 && node.heredocs.length === 0) bad('RUN requires at least one argument');
  const mounts = (flags.get('mount') ?? []).map((raw) => parseMountSpec(raw, bad));
  const cmd: RunCommand = {
    kind: 'run',
    ...base,
    shellForm: !node.json,
    cmdLine: node.args.slice(),
    heredocs: node.heredocs.map((h) => ({ ...h })),
    mounts,
  };
  const network = flag(flags, 'network');
  if (network !== undefined) {
    if (!['default', 'none', 'host'].includes(network)) bad(`unsupported network mode "${network}"`, 'use --network=default, none or host');
    cmd.network = network;
  }
  const security = flag(flags, 'security');
  if (security !== undefined) {
    if (!['sandbox', 'insecure'].includes(security)) bad(`unsupported security mode "${security}"`, 'use --security=sandbox or insecure');
    cmd.security = security;
  }
  return cmd;
}

/** `type=cache,target=/x,id=y`: a CSV of key=value (bare keys mean true), quotes allowed. */
export function parseMountSpec(raw: string, bad: Bad): MountSpec {
  const options: Record<string, string> = {};
  for (const field of splitCsv(raw)) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? 'true' : field.slice(eq + 1);
    const canonical = MOUNT_KEY_ALIASES[key] ?? key;
    if (!MOUNT_KEYS.has(canonical)) bad(`unknown key "${key}" in --mount=${raw}`, didYouMean(key, MOUNT_KEYS));
    options[canonical] = value;
  }
  const type = options.type ?? 'bind';
  if (!['bind', 'cache', 'secret', 'tmpfs', 'ssh'].includes(type)) bad(`unsupported mount type "${type}"`, 'use bind, cache, secret, tmpfs or ssh');
  options.type = type;
  if ((type === 'bind' || type === 'cache' || type === 'tmpfs') && !options.target) {
    bad(`--mount=type=${type} needs a target`, `add target=/path to --mount=${raw}`);
  }
  return { raw, options };
}

const MOUNT_KEYS = new Set([
  'type', 'target', 'source', 'from', 'id', 'sharing', 'mode', 'uid', 'gid', 'readonly', 'rw', 'required', 'env', 'size',
]);
const MOUNT_KEY_ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly', readwrite: 'rw' };

function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else current += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ',') {
      fields.push(current);
      current = '';
    } else current += ch;
  }
  fields.push(current);
  return fields;
}

function keyValues(node: InstructionNode, keyword: string, bad: Bad): KeyValue[] {
  const args = node.args;
  if (args.length === 0) bad(`${keyword.toUpperCase()} requires at least one argument`);
  if (args.length % 3 !== 0) bad(`${keyword.toUpperCase()} has a key without a value`, `write ${keyword.toUpperCase()} KEY=VALUE`);
  const pairs: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i]!;
    if (key === '') bad(`${keyword.toUpperCase()} names cannot be empty`);
    pairs.push({ key, value: args[i + 1]! });
  }
  return pairs;
}

function convertArg(node: InstructionNode, base: Base, bad: Bad): ArgCommand {
  if (node.args.length === 0) bad('ARG requires at least one argument', 'write ARG NAME or ARG NAME=DEFAULT');
  const args = node.args.map((word) => {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    if (key === '') bad(`invalid ARG "${word}": the name is empty`);
    return eq < 0 ? { key } : { key, value: word.slice(eq + 1) };
  });
  return { kind: 'arg', ...base, args };
}

function convertCopy(node: InstructionNode, keyword: 'copy' | 'add', base: Base, flags: Flags, bad: Bad): CopyCommand {
  const args = node.args;
  const heredocs = node.heredocs.map((h) => ({ ...h }));
  if (args.length < 2 && !(heredocs.length > 0 && args.length >= 1)) {
    bad(`${keyword.toUpperCase()} requires at least two arguments`, `write ${keyword.toUpperCase()} SOURCE... DEST`);
  }
  const cmd: CopyCommand = {
    kind: keyword,
    ...base,
    sources: args.slice(0, -1),
    dest: args[args.length - 1]!,
    link: boolFlag(flags, 'link') ?? false,
    parents: boolFlag(flags, 'parents') ?? false,
    excludes: flags.get('exclude') ?? [],
    keepGitDir: boolFlag(flags, 'keep-git-dir') ?? false,
    heredocs,
  };
  const from = flag(flags, 'from');
  if (from !== undefined) cmd.from = from;
  const chown = flag(flags, 'chown');
  if (chown !== undefined) cmd.chown = chown;
  const chmod = flag(flags, 'chmod');
  if (chmod !== undefined) cmd.chmod = chmod;
  const checksum = flag(flags, 'checksum');
  if (checksum !== undefined) cmd.checksum = checksum;
  const unpack = boolFlag(flags, 'unpack');
  if (unpack !== undefined) cmd.unpack = unpack;
  return cmd;
}

function convertOnbuild(node: InstructionNode, base: Base, bad: Bad): OnbuildCommand {
  const trigger = node.next;
  if (!trigger) bad('ONBUILD requires an instruction to run later', 'write ONBUILD INSTRUCTION ARGS...');
  const kw = trigger.keyword.toLowerCase();
  if (kw === 'onbuild') bad('chaining ONBUILD via `ONBUILD ONBUILD` is not allowed');
  if (kw === 'from' || kw === 'maintainer') bad(`${kw.toUpperCase()} is not allowed as an ONBUILD trigger`);
  if (!(INSTRUCTIONS as readonly string[]).includes(kw)) {
    bad(`unknown instruction in ONBUILD: ${trigger.keyword.toUpperCase()}`, didYouMean(kw.toUpperCase(), INSTRUCTIONS.map((i) => i.toUpperCase())));
  }
  // The config stores the trigger as written after ONBUILD, which is what Docker records too.
  const expression = base.original.replace(/^\s*onbuild\s+/i, '').trim();
  return { kind: 'onbuild', ...base, expression };
}

function convertHealthcheck(node: InstructionNode, base: Base, flags: Flags, bad: Bad): HealthcheckCommand {
  const args = node.args;
  if (args.length === 0) bad('HEALTHCHECK requires an argument', 'write HEALTHCHECK CMD COMMAND or HEALTHCHECK NONE');
  const type = args[0]!.toUpperCase();
  if (type === 'NONE') {
    if (args.length > 1) bad('HEALTHCHECK NONE takes no other arguments');
    if (flags.size > 0) bad('HEALTHCHECK NONE takes no flags');
    return { kind: 'healthcheck', ...base, test: ['NONE'] };
  }
  if (type !== 'CMD') bad(`unknown type "${args[0]}" in HEALTHCHECK`, 'write HEALTHCHECK CMD COMMAND or HEALTHCHECK NONE');
  const rest = args.slice(1);
  if (rest.length === 0) bad('HEALTHCHECK CMD requires a command');
  const test = node.json ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')];
  const cmd: HealthcheckCommand = { kind: 'healthcheck', ...base, test };
  const durations: [string, 'intervalNs' | 'timeoutNs' | 'startPeriodNs' | 'startIntervalNs'][] = [
    ['interval', 'intervalNs'],
    ['timeout', 'timeoutNs'],
    ['start-period', 'startPeriodNs'],
    ['start-interval', 'startIntervalNs'],
  ];
  for (const [name, field] of durations) {
    const raw = flag(flags, name);
    if (raw === undefined) continue;
    const ns = parseDuration(raw);
    if (ns === undefined) bad(`invalid duration "${raw}" for --${name}`, 'use Go duration syntax such as 30s, 1m30s or 500ms');
    if (ns !== 0 && ns < 1_000_000) bad(`--${name} cannot be less than 1ms`);
    cmd[field] = ns;
  }
  const retries = flag(flags, 'retries');
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) bad(`invalid --retries "${retries}"`, 'use a whole number');
    cmd.retries = Number(retries);
  }
  return cmd;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && matched > 0 ? Math.round(total) : undefined;
}
