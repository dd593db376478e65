/**
 * Parser nodes → typed commands (like BuildKit's `instructions` package): every instruction's
 * arity and flags are checked here, words stay unexpanded. Problems are collected so that one
 * run reports all of them.
 *
 * Flags follow BuildKit's BFlags: names are case-sensitive, a string flag needs `=` but may be
 * empty (`--chown=` means no chown), a boolean flag may omit its value, only list flags repeat.
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
import { parseHeredocWord, type InstructionNode, type ParsedDockerfile } from './parser.ts';
import { ShellLex } from './shell.ts';
import { didYouMean } from './suggest.ts';

export const INSTRUCTIONS = [
  'from', 'run', 'cmd', 'entrypoint', 'label', 'maintainer', 'expose', 'env', 'add', 'copy', 'volume', 'user',
  'workdir', 'arg', 'onbuild', 'stopsignal', 'healthcheck', 'shell',
] as const;

export type ParsedCommand = Command | FromCommand;

type FlagKind = 'string' | 'bool' | 'list';

/** Flags each instruction accepts. Instructions not listed take none. */
const FLAGS: Record<string, Record<string, FlagKind>> = {
  from: { platform: 'string' },
  run: { mount: 'list', network: 'string', security: 'string' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' },
  add: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', unpack: 'bool', exclude: 'list' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

/** BuildKit's rule for `AS name`, checked after lowercasing. */
const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

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
      commands.push(convertNode(node, parsed.file, lines, parsed.directives.escape));
    } catch (err) {
      if (err instanceof LadingError) errors.push(err);
      else throw err;
    }
  }
  return { commands, errors };
}

export function locationOf(node: InstructionNode, file: string, lines: string[], needle?: string): SourceLocation {
  const text = lines[node.startLine - 1]?.replace(/\r?\n$/, '').replace(/\r$/, '');
  let column = node.column;
  // Point at the offending word when it is on the instruction's first line, after the keyword.
  if (needle !== undefined && needle !== '' && text !== undefined) {
    const after = node.column - 1 + node.keyword.length;
    let at = text.indexOf(needle, after);
    if (at < 0) at = text.toLowerCase().indexOf(needle.toLowerCase(), after);
    if (at >= 0) column = at + 1;
  }
  return { file, line: node.startLine, column, text };
}

type Bad = (message: string, hint?: string, needle?: string) => never;
type Base = { location: SourceLocation; original: string };
type Flags = Map<string, string[]>;

export function convertNode(node: InstructionNode, file: string, lines: string[], escapeToken: '\\' | '`' = '\\'): ParsedCommand {
  const keyword = node.keyword.toLowerCase();
  const location = locationOf(node, file, lines);
  const base: Base = { location, original: node.original };
  const bad: Bad = (message, hint, needle) => {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, { location: locationOf(node, file, lines, needle), hint });
  };
  if (!(INSTRUCTIONS as readonly string[]).includes(keyword)) {
    const upper = INSTRUCTIONS.map((i) => i.toUpperCase());
    return bad(`unknown instruction: ${node.keyword.toUpperCase()}`, didYouMean(keyword.toUpperCase(), upper) ?? `instructions are ${upper.join(', ')}`);
  }
  // BuildKit never reads the flags of STOPSIGNAL or HEALTHCHECK NONE, so any are accepted there.
  const ignoresFlags = keyword === 'stopsignal' || (keyword === 'healthcheck' && node.args[0]?.toUpperCase() === 'NONE');
  const flags = ignoresFlags ? new Map<string, string[]>() : parseFlags(node, keyword, bad);

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
      const cmd: EnvCommand = { kind: keyword, ...base, pairs: keyValues(node, keyword, bad) };
      return cmd;
    }
    case 'maintainer': {
      if (node.args.length !== 1) bad('MAINTAINER requires exactly one argument', 'write MAINTAINER NAME, or better LABEL org.opencontainers.image.authors=NAME');
      const cmd: SimpleCommand = { kind: 'maintainer', ...base, value: node.args[0]! };
      return cmd;
    }
    case 'expose':
    case 'volume': {
      if (node.args.length === 0) bad(`${keyword.toUpperCase()} requires at least one argument`);
      // BuildKit sorts EXPOSE's words as it parses them; its history shows them in that order.
      const values = keyword === 'expose' ? node.args.slice().sort() : node.args.map((v) => v.trim());
      if (keyword === 'volume' && values.some((v) => v === '')) bad('VOLUME specified can not be an empty string');
      const cmd: ListCommand = { kind: keyword, ...base, values };
      return cmd;
    }
    case 'shell': {
      if (node.args.length === 0) bad('SHELL requires at least one argument', 'write SHELL ["/bin/sh", "-c"]');
      if (!node.json) bad('SHELL requires the arguments to be in JSON form', `write it as SHELL ${JSON.stringify(node.args.join(' ').split(/\s+/))}`);
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
      return convertCopy(node, keyword, base, flags, bad, escapeToken);
    case 'onbuild':
      return convertOnbuild(node, base, bad);
    case 'healthcheck':
      return convertHealthcheck(node, base, flags, bad);
  }
  throw new Error(`instruction ${keyword} has no converter`);
}

function parseFlags(node: InstructionNode, keyword: string, bad: Bad): Flags {
  const allowed = FLAGS[keyword] ?? {};
  const known = Object.keys(allowed).map((f) => `--${f}`);
  const out: Flags = new Map();
  for (const raw of node.flags) {
    if (!raw.startsWith('--')) bad(`invalid flag "${raw}": flags start with --`, undefined, raw);
    const body = raw.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = Object.hasOwn(allowed, name) ? allowed[name] : undefined;
    if (kind === undefined) {
      const hint = didYouMean(`--${name}`, known) ?? (known.length > 0 ? `${keyword.toUpperCase()} accepts ${known.join(', ')}` : `${keyword.toUpperCase()} takes no flags`);
      bad(`unknown flag --${name} for ${keyword.toUpperCase()}`, hint, raw);
    }
    if (kind !== 'list' && out.has(name)) bad(`duplicate flag --${name}`, 'give each flag once', raw);
    if (kind === 'bool') {
      if (value === '') bad(`missing a value on flag --${name}`, `write --${name}, --${name}=true or --${name}=false`, raw);
      const v = (value ?? 'true').toLowerCase();
      if (v !== 'true' && v !== 'false') bad(`--${name} expects a boolean value, not "${value}"`, `write --${name}=true or --${name}=false`, raw);
      out.set(name, [v]);
      continue;
    }
    if (value === undefined) bad(`missing a value on flag --${name}`, `write it as --${name}=VALUE`, raw);
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

/** A string flag's value; an empty one counts as not given, as in BuildKit. */
function flag(flags: Flags, name: string): string | undefined {
  const v = flags.get(name)?.[0];
  return v === '' ? undefined : v;
}

function boolFlag(flags: Flags, name: string): boolean | undefined {
  const v = flags.get(name)?.[0];
  return v === undefined ? undefined : v === 'true';
}

function convertFrom(node: InstructionNode, base: Base, flags: Flags, bad: Bad): FromCommand {
  const args = node.args;
  if (args.length === 2 && args[1]!.toLowerCase() === 'as') {
    bad('FROM requires either one or three arguments: the stage name after AS is missing', `write FROM ${args[0]} AS NAME`, args[1]);
  }
  if (args.length === 3 && args[1]!.toLowerCase() !== 'as') {
    bad('FROM requires either one or three arguments', `the second word must be AS: FROM ${args[0]} AS ${args[2]}`, args[1]);
  }
  if (args.length !== 1 && args.length !== 3) bad('FROM requires either one or three arguments', 'write FROM IMAGE or FROM IMAGE AS NAME');
  const cmd: FromCommand = { kind: 'from', ...base, image: args[0]! };
  if (args.length === 3) {
    const name = args[2]!.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      bad(
        `invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`,
        'stage names start with a letter and contain only letters, digits, "-", "_" and "."',
        args[2],
      );
    }
    cmd.stageName = name;
  }
  const platform = flag(flags, 'platform');
  if (platform !== undefined) cmd.platform = platform;
  return cmd;
}

function convertRun(node: InstructionNode, base: Base, flags: Flags, bad: Bad): RunCommand {
  if (node.args.length === 0 && node.heredocs.length === 0) bad('RUN requires at least one argument', 'write RUN COMMAND or RUN ["EXECUTABLE", "ARG"]');
  const mounts = (flags.get('mount') ?? []).map((raw) => parseMountSpec(raw, (m, h) => bad(m, h, raw)));
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
    if (!['default', 'none', 'host'].includes(network)) bad(`unsupported network mode "${network}"`, 'use --network=default, none or host', network);
    cmd.network = network;
  }
  const security = flag(flags, 'security');
  if (security !== undefined) {
    if (!['sandbox', 'insecure'].includes(security)) bad(`unsupported security mode "${security}"`, 'use --security=sandbox or insecure', security);
    cmd.security = security;
  }
  return cmd;
}

const MOUNT_KEYS = new Set(['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'mode', 'uid', 'gid', 'env', 'size', 'rw']);
const MOUNT_KEY_ALIASES: Record<string, string> = { src: 'source', dst: 'target', destination: 'target', ro: 'readonly', readwrite: 'rw' };
/** Keys BuildKit accepts without a value. */
const BARE_MOUNT_KEYS = new Set(['readonly', 'rw', 'required']);

/**
 * `type=cache,target=/x,id=y`: BuildKit reads the flag as one CSV record of key=value fields. Only
 * the shape is checked here; values may hold variables and are checked after expansion
 * (`checkMount`), except `from`, which BuildKit never expands. Values without variables are
 * checked now too, so a typo fails before anything runs.
 */
export function parseMountSpec(raw: string, bad: (message: string, hint?: string) => never): MountSpec {
  const options: Record<string, string> = {};
  const fields = splitCsvRecord(raw);
  if (fields === undefined) bad(`--mount=${raw} is not a valid CSV record (a quote does not close)`, 'quote a whole field: "target=/a,b"');
  for (const field of fields) {
    const eq = field.indexOf('=');
    const written = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const key = MOUNT_KEY_ALIASES[written] ?? written;
    if (eq < 0 && !BARE_MOUNT_KEYS.has(key)) bad(`invalid field '${field}' must be a key=value pair`, `write ${field}=VALUE`);
    if (!MOUNT_KEYS.has(key)) bad(`unexpected key '${written}' in '${field}'`, didYouMean(written, [...MOUNT_KEYS, ...Object.keys(MOUNT_KEY_ALIASES)]) ?? 'keys are type, from, source, target, id, sharing, mode, uid, gid, readonly, rw, required, env, size');
    if (eq < 0) {
      options[key] = 'true';
      continue;
    }
    const value = field.slice(eq + 1);
    if (key === 'from' && /\$./.test(value)) {
      bad(`'from' in --mount doesn't support variable expansion, define alias stage instead`, `add ARG NAME before the first FROM, then FROM \${NAME} AS alias and use from=alias`);
    }
    options[key] = value;
  }
  const literal = Object.fromEntries(Object.entries(options).filter(([, v]) => !v.includes('$')));
  if (Object.keys(literal).length === Object.keys(options).length) checkMount(literal, bad);
  else if (literal.type !== undefined) mountType(literal.type, bad);
  return { raw, options };
}

/** BuildKit's rules for a mount's options once they are expanded. Returns the mount type. */
export function checkMount(o: Record<string, string>, bad: (message: string, hint?: string) => never): string {
  const type = o.type === undefined ? 'bind' : mountType(o.type, bad);
  const boolean = (key: string): void => {
    const v = o[key];
    if (v !== undefined && parseGoBool(v) === undefined) bad(`invalid value for ${key}: ${v}`, `use ${key}=true or ${key}=false`);
  };
  boolean('readonly');
  boolean('rw');
  if (o.required !== undefined) {
    if (type !== 'secret' && type !== 'ssh') bad(`unexpected key 'required' for mount type '${type}'`, 'required applies to secret and ssh mounts');
    boolean('required');
  }
  if (o.sharing !== undefined) {
    if (!['shared', 'private', 'locked'].includes(o.sharing.toLowerCase())) bad(`unsupported sharing value "${o.sharing}"`, 'use sharing=shared, private or locked');
    if (type !== 'cache') bad(`invalid cache sharing set for ${type} mount`, 'sharing applies to cache mounts');
  }
  for (const [key, base] of [['mode', 8], ['uid', 10], ['gid', 10]] as const) {
    const v = o[key];
    if (v === undefined) continue;
    if (!(base === 8 ? /^[0-7]+$/ : /^\d+$/).test(v) || Number.parseInt(v, base) > 0xffffffff) {
      bad(`invalid value ${v} for ${key}`, key === 'mode' ? 'write the mode in octal, e.g. mode=0755' : `write ${key} as a number`);
    }
    if (type !== 'secret' && type !== 'ssh' && type !== 'cache') bad(`${key} not allowed for "${type}" type mounts`, `${key} applies to cache, secret and ssh mounts`);
  }
  if (type === 'secret') {
    if (o.from !== undefined) bad('secret mount should not have a from');
    if ((o.source ?? '') === '' && (o.target ?? '') === '' && (o.id ?? '') === '' && (o.env ?? '') === '') {
      bad('invalid secret mount. one of source, target required', 'write --mount=type=secret,id=NAME');
    }
    if ((o.source ?? '') !== '' && (o.id ?? '') !== '') bad("both source and id can't be set");
  }
  if ((type === 'bind' || type === 'cache' || type === 'tmpfs') && (o.target ?? '') === '') {
    bad(`--mount=type=${type} needs a target`, 'add target=/path');
  }
  return type;
}

function mountType(value: string, bad: (message: string, hint?: string) => never): string {
  const type = value.toLowerCase();
  const types = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
  if (!types.includes(type)) bad(`unsupported mount type "${value}"`, didYouMean(type, types) ?? 'use bind, cache, tmpfs, secret or ssh');
  return type;
}

/** Go's strconv.ParseBool. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** One record of Go's encoding/csv: a field is quoted only when it starts with `"`; `""` is a quote. */
function splitCsvRecord(text: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) return undefined;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      // Go's reader rejects text between a closing quote and the next comma.
      if (i < text.length && text[i] !== ',') return undefined;
    } else {
      const end = text.indexOf(',', i);
      field = end < 0 ? text.slice(i) : text.slice(i, end);
      i = end < 0 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

function keyValues(node: InstructionNode, keyword: string, bad: Bad): KeyValue[] {
  const args = node.args;
  if (args.length === 0) bad(`${keyword.toUpperCase()} requires at least one argument`, `write ${keyword.toUpperCase()} KEY=VALUE`);
  if (args.length % 3 !== 0) bad(`${keyword.toUpperCase()} has a key without a value`, `write ${keyword.toUpperCase()} KEY=VALUE`);
  const pairs: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i]!;
    if (key === '') bad(`${keyword.toUpperCase()} names can not be blank`);
    pairs.push({ key, value: args[i + 1]! });
  }
  return pairs;
}

function convertArg(node: InstructionNode, base: Base, bad: Bad): ArgCommand {
  if (node.args.length === 0) bad('ARG requires at least one argument', 'write ARG NAME or ARG NAME=DEFAULT');
  const args = node.args.map((word) => {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    if (key === '') bad('ARG names can not be blank', 'write ARG NAME=DEFAULT', word);
    return eq < 0 ? { key } : { key, value: word.slice(eq + 1) };
  });
  return { kind: 'arg', ...base, args };
}

function convertCopy(node: InstructionNode, keyword: 'copy' | 'add', base: Base, flags: Flags, bad: Bad, escapeToken: '\\' | '`'): CopyCommand {
  const args = node.args;
  const upper = keyword.toUpperCase();
  if (args.length < 2) {
    bad(`${upper} requires at least two arguments, but only one was provided. Destination could not be determined`, `write ${upper} SOURCE... DEST`);
  }
  const dest = args[args.length - 1]!;
  if (!node.json && parseHeredocWord(dest) !== null) bad(`${upper} cannot accept a heredoc as a destination`, `write ${upper} <<EOF DEST`, dest);
  const cmd: CopyCommand = {
    kind: keyword,
    ...base,
    sources: args.slice(0, -1),
    dest,
    link: boolFlag(flags, 'link') ?? false,
    parents: boolFlag(flags, 'parents') ?? false,
    excludes: (flags.get('exclude') ?? []).filter((e) => e !== ''),
    keepGitDir: boolFlag(flags, 'keep-git-dir') ?? false,
    heredocs: node.json ? [] : node.heredocs.map((h) => ({ ...h })),
  };
  const from = flag(flags, 'from');
  if (from !== undefined) {
    // BuildKit resolves --from before any variable has a value, so it refuses to expand one.
    let plain: string | undefined;
    try {
      plain = new ShellLex(escapeToken).processWord(from, new Map()).value;
    } catch {
      plain = undefined;
    }
    if (plain !== from) {
      bad(
        `variable expansion is not supported for --from (--from=${from})`,
        'define a new stage with FROM using an ARG from the global scope (ARG NAME before the first FROM, then FROM ${NAME} AS alias) and use --from=alias',
        from,
      );
    }
    cmd.from = from;
  }
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
  if (!trigger) bad('ONBUILD requires at least one argument', 'write ONBUILD INSTRUCTION ARGS...');
  const kw = trigger.keyword.toLowerCase();
  if (kw === 'onbuild') bad('chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', 'give the trigger instruction once, after a single ONBUILD', trigger.keyword);
  if (kw === 'from' || kw === 'maintainer') {
    bad(`${kw.toUpperCase()} isn't allowed as an ONBUILD trigger`, 'ONBUILD takes the instructions that may follow FROM, except MAINTAINER', trigger.keyword);
  }
  if (!(INSTRUCTIONS as readonly string[]).includes(kw)) {
    bad(`unknown instruction in ONBUILD: ${trigger.keyword.toUpperCase()}`, didYouMean(kw.toUpperCase(), INSTRUCTIONS.map((i) => i.toUpperCase())), trigger.keyword);
  }
  // The trigger is stored as written after ONBUILD, with its heredoc bodies, as BuildKit does.
  let expression = base.original.replace(/^\s*onbuild\s*/i, '');
  for (const h of node.heredocs) expression += `\n${h.content}${h.name}`;
  return { kind: 'onbuild', ...base, expression };
}

function convertHealthcheck(node: InstructionNode, base: Base, flags: Flags, bad: Bad): HealthcheckCommand {
  const args = node.args;
  if (args.length === 0) bad('HEALTHCHECK requires at least one argument', 'write HEALTHCHECK CMD COMMAND or HEALTHCHECK NONE');
  const type = args[0]!.toUpperCase();
  const rest = args.slice(1);
  if (type === 'NONE') {
    if (rest.length > 0) bad('HEALTHCHECK NONE takes no arguments');
    return { kind: 'healthcheck', ...base, test: ['NONE'] };
  }
  if (type !== 'CMD') bad(`unknown type "${args[0]}" in HEALTHCHECK (try CMD)`, 'write HEALTHCHECK CMD COMMAND or HEALTHCHECK NONE', args[0]);
  if (rest.length === 0 || (!node.json && rest.join(' ') === '')) bad('missing command after HEALTHCHECK CMD', 'write HEALTHCHECK CMD COMMAND');
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
    if (ns === undefined) bad(`invalid duration "${raw}" for --${name}`, 'use Go duration syntax such as 30s, 1m30s or 500ms', raw);
    if (ns !== 0 && ns < 1_000_000) bad(`--${name} cannot be less than 1ms`, 'use 0 for the default, or at least 1ms', raw);
    if (ns !== 0) cmd[field] = ns;
  }
  const retries = flag(flags, 'retries');
  if (retries !== undefined) {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 0x7fffffff) bad(`invalid --retries "${retries}"`, 'use a whole number', retries);
    if (Number(retries) < 0) bad(`--retries cannot be negative (${Number(retries)})`, 'use 0 for the default, or a positive count', retries);
    if (Number(retries) !== 0) cmd.retries = Number(retries);
  }
  return cmd;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let m: RegExpExecArray | null;
  while (re.lastIndex < s.length && (m = re.exec(s)) !== null) total += Number(m[1]) * UNIT_NS[m[2]!]!;
  return re.lastIndex === s.length && re.lastIndex > 0 ? sign * Math.round(total) : undefined;
}
