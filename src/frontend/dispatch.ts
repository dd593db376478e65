/**
 * Runs a stage's commands against its evolving state, as BuildKit's dispatcher does: words are
 * expanded with the environment at that point (the base image's ENV, then the stage's ENV over
 * its ARGs), metadata instructions change the config, and the rest become steps for the engine.
 * Pure: no files, no network. The engine supplies the base image's config.
 */
import path from 'node:path/posix';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type {
  ArgCommand,
  CmdCommand,
  Command,
  CopyCommand,
  EnvCommand,
  HealthcheckCommand,
  Heredoc,
  ListCommand,
  RunCommand,
  SimpleCommand,
} from '../graph/types.ts';
import type { ContainerConfig, HealthConfig } from '../image/types.ts';
import { canonicalJSON } from '../image/json.ts';
import { PROXY_ARGS } from './args.ts';
import { ShellLex, type WordResult } from './shell.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** A step that changes only the config (it is already applied when you receive it). */
export interface ConfigStep {
  kind: 'config';
  history: string;
  /** Canonical text of what the step did, for cache keys. */
  key: string;
  location: SourceLocation;
}

export interface WorkdirStep {
  kind: 'workdir';
  /** Absolute, cleaned. The engine creates it (owned by `user`) when the image lacks it. */
  path: string;
  user: string;
  history: string;
  key: string;
  location: SourceLocation;
}

export interface CopyStep {
  kind: 'copy' | 'add';
  /** Expanded sources, as written (relative to the context or the `from` root). */
  sources: string[];
  /** Absolute destination; `destIsDir` when it ended in `/` (or `.`) or has several sources. */
  dest: string;
  destIsDir: boolean;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  excludes: string[];
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
  /** Inline files from heredocs, by source name, content already expanded and chomped. */
  inline: { name: string; content: string }[];
  history: string;
  key: string;
  location: SourceLocation;
}

export interface RunMountStep {
  type: 'bind' | 'cache' | 'secret' | 'tmpfs' | 'ssh';
  target?: string;
  source?: string;
  from?: string;
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  readonly: boolean;
  required: boolean;
  env?: string;
  size?: string;
}

export interface RunStep {
  kind: 'run';
  argv: string[];
  /** Config Env plus the ARGs in scope (ENV wins); never stored in the image. */
  env: string[];
  workdir: string;
  user: string;
  network: 'default' | 'none' | 'host';
  insecure: boolean;
  mounts: RunMountStep[];
  /**
   * Heredoc bodies. One with `path` is a `#!` script the sandbox must provide, executable, at
   * that path (read-only, never part of the layer).
   */
  heredocFiles: { name: string; content: string; path?: string }[];
  history: string;
  key: string;
  location: SourceLocation;
}

export type Step = ConfigStep | WorkdirStep | CopyStep | RunStep;

export interface DispatchOptions {
  escapeToken: '\\' | '`';
  /** The base image's runtime config (undefined for scratch). */
  baseConfig?: ContainerConfig;
  buildArgs: ReadonlyMap<string, string>;
  /** Values of the ARGs declared before the first FROM. */
  globalArgs: ReadonlyMap<string, string | undefined>;
  platformArgs: ReadonlyMap<string, string>;
}

export class StageDispatcher {
  /** The config as it stands after the commands dispatched so far. */
  readonly config: ContainerConfig;
  /** `MAINTAINER`, which lives outside the runtime config. */
  author?: string;
  private readonly lex: ShellLex;
  private readonly args = new Map<string, string | undefined>();
  private readonly options: DispatchOptions;
  private cmdSet = false;

  constructor(options: DispatchOptions) {
    this.options = options;
    this.lex = new ShellLex(options.escapeToken);
    this.config = inheritConfig(options.baseConfig);
  }

  /** ENV over ARG: the environment words are expanded in. */
  private expansionEnv(): Map<string, string> {
    const env = new Map<string, string>();
    for (const [k, v] of this.args) if (v !== undefined) env.set(k, v);
    for (const e of this.config.Env ?? []) {
      const eq = e.indexOf('=');
      env.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
    }
    return env;
  }

  private word(text: string, cmd: Command, used?: Set<string>): string {
    let result: WordResult;
    try {
      result = this.lex.processWord(text, this.expansionEnv());
    } catch (err) {
      throw relocate(err, cmd.location);
    }
    if (used) for (const name of result.matched) if (this.args.has(name)) used.add(name);
    return result.value;
  }

  private words(text: string, cmd: Command, used?: Set<string>): string[] {
    try {
      const r = this.lex.processWords(text, this.expansionEnv());
      if (used) for (const name of r.matched) if (this.args.has(name)) used.add(name);
      return r.words;
    } catch (err) {
      throw relocate(err, cmd.location);
    }
  }

  private shell(): string[] {
    return this.config.Shell && this.config.Shell.length > 0 ? this.config.Shell : DEFAULT_SHELL;
  }

  /** Values of the build args this step depends on, for its cache key. */
  private argKey(used: Set<string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...used].sort()) out[name] = this.args.get(name) ?? '';
    return out;
  }

  dispatch(cmd: Command): Step | undefined {
    switch (cmd.kind) {
      case 'arg':
        this.dispatchArg(cmd);
        return undefined;
      case 'env':
        return this.dispatchEnv(cmd);
      case 'label':
        return this.dispatchLabel(cmd);
      case 'maintainer':
        this.author = cmd.value;
        return this.configStep(cmd, `MAINTAINER ${cmd.value}`, { maintainer: cmd.value });
      case 'cmd':
      case 'entrypoint':
        return this.dispatchCmd(cmd);
      case 'expose':
        return this.dispatchExpose(cmd);
      case 'volume':
        return this.dispatchVolume(cmd);
      case 'shell':
        this.config.Shell = cmd.values.slice();
        return this.configStep(cmd, `SHELL ${goList(cmd.values)}`, { shell: cmd.values });
      case 'user':
        return this.dispatchUser(cmd);
      case 'workdir':
        return this.dispatchWorkdir(cmd);
      case 'stopsignal':
        return this.dispatchStopsignal(cmd);
      case 'onbuild':
        this.config.OnBuild = [...(this.config.OnBuild ?? []), cmd.expression];
        return this.configStep(cmd, `ONBUILD ${cmd.expression}`, { onbuild: cmd.expression });
      case 'healthcheck':
        return this.dispatchHealthcheck(cmd);
      case 'copy':
      case 'add':
        return this.dispatchCopy(cmd);
      case 'run':
        return this.dispatchRun(cmd);
    }
  }

  private configStep(cmd: Command, history: string, what: unknown, used: Set<string> = new Set()): ConfigStep {
    return { kind: 'config', history, key: canonicalJSON({ what, args: this.argKey(used) }), location: cmd.location };
  }

  private dispatchArg(cmd: ArgCommand): void {
    for (const a of cmd.args) {
      const { buildArgs, globalArgs, platformArgs } = this.options;
      let value: string | undefined;
      if (buildArgs.has(a.key)) value = buildArgs.get(a.key);
      else if (a.value !== undefined) value = this.word(a.value, cmd);
      else if (globalArgs.has(a.key)) value = globalArgs.get(a.key);
      else value = platformArgs.get(a.key);
      this.args.set(a.key, value);
    }
  }

  private dispatchEnv(cmd: EnvCommand): ConfigStep {
    const used = new Set<string>();
    // Every pair is expanded with the environment from before the instruction, as Docker does.
    const pairs = cmd.pairs.map((p) => ({ key: this.word(p.key, cmd, used), value: this.word(p.value, cmd, used) }));
    for (const p of pairs) setEnv(this.config, p.key, p.value);
    return this.configStep(cmd, `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, { env: pairs }, used);
  }

  private dispatchLabel(cmd: EnvCommand): ConfigStep {
    const used = new Set<string>();
    const pairs = cmd.pairs.map((p) => ({ key: this.word(p.key, cmd, used), value: this.word(p.value, cmd, used) }));
    this.config.Labels = { ...(this.config.Labels ?? {}) };
    for (const p of pairs) this.config.Labels[p.key] = p.value;
    return this.configStep(cmd, `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, { label: pairs }, used);
  }

  private dispatchCmd(cmd: CmdCommand): ConfigStep {
    const argv = cmd.shellForm ? (cmd.cmdLine.length === 0 || cmd.cmdLine.join(' ') === '' ? [] : [...this.shell(), cmd.cmdLine.join(' ')]) : cmd.cmdLine.slice();
    if (cmd.kind === 'cmd') {
      this.config.Cmd = argv;
      this.cmdSet = true;
    } else {
      this.config.Entrypoint = argv.length === 0 && cmd.shellForm ? null : argv;
      // An ENTRYPOINT drops the CMD inherited from the base, unless this stage set one.
      if (!this.cmdSet) this.config.Cmd = null;
    }
    return this.configStep(cmd, `${cmd.kind.toUpperCase()} ${goList(argv)}`, { [cmd.kind]: argv });
  }

  private dispatchExpose(cmd: ListCommand): ConfigStep {
    const used = new Set<string>();
    const ports: string[] = [];
    for (const raw of cmd.values) for (const w of this.words(raw, cmd, used)) ports.push(...expandPorts(w, cmd.location));
    this.config.ExposedPorts = { ...(this.config.ExposedPorts ?? {}) };
    for (const p of ports) this.config.ExposedPorts[p] = {};
    return this.configStep(cmd, `EXPOSE ${ports.join(' ')}`, { expose: ports }, used);
  }

  private dispatchVolume(cmd: ListCommand): ConfigStep {
    const used = new Set<string>();
    const vols = cmd.values.map((v) => this.word(v, cmd, used)).filter((v) => v.trim() !== '');
    if (vols.length === 0) {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'VOLUME specified can not be an empty string', { location: cmd.location });
    }
    this.config.Volumes = { ...(this.config.Volumes ?? {}) };
    for (const v of vols) this.config.Volumes[v] = {};
    return this.configStep(cmd, `VOLUME ${goList(vols)}`, { volume: vols }, used);
  }

  private dispatchUser(cmd: SimpleCommand): ConfigStep {
    const used = new Set<string>();
    const user = this.word(cmd.value, cmd, used);
    this.config.User = user;
    return this.configStep(cmd, `USER ${user}`, { user }, used);
  }

  private dispatchWorkdir(cmd: SimpleCommand): WorkdirStep {
    const used = new Set<string>();
    const dir = this.word(cmd.value, cmd, used);
    const resolved = path.resolve('/', this.config.WorkingDir || '/', dir);
    this.config.WorkingDir = resolved;
    const user = this.config.User ?? '';
    return {
      kind: 'workdir',
      path: resolved,
      user,
      history: `WORKDIR ${resolved}`,
      key: canonicalJSON({ workdir: resolved, user, args: this.argKey(used) }),
      location: cmd.location,
    };
  }

  private dispatchStopsignal(cmd: SimpleCommand): ConfigStep {
    const used = new Set<string>();
    const signal = this.word(cmd.value, cmd, used);
    if (!isSignal(signal)) {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid signal "${signal}"`, {
        location: cmd.location,
        hint: 'use a signal name such as SIGTERM or SIGQUIT, or its number',
      });
    }
    this.config.StopSignal = signal;
    return this.configStep(cmd, `STOPSIGNAL ${signal}`, { stopsignal: signal }, used);
  }

  private dispatchHealthcheck(cmd: HealthcheckCommand): ConfigStep {
    const hc: HealthConfig = { Test: cmd.test.slice() };
    if (cmd.intervalNs !== undefined) hc.Interval = cmd.intervalNs;
    if (cmd.timeoutNs !== undefined) hc.Timeout = cmd.timeoutNs;
    if (cmd.startPeriodNs !== undefined) hc.StartPeriod = cmd.startPeriodNs;
    if (cmd.startIntervalNs !== undefined) hc.StartInterval = cmd.startIntervalNs;
    if (cmd.retries !== undefined) hc.Retries = cmd.retries;
    this.config.Healthcheck = hc;
    return this.configStep(cmd, `HEALTHCHECK ${goList(hc.Test ?? [])}`, { healthcheck: hc });
  }

  private dispatchCopy(cmd: CopyCommand): CopyStep {
    const used = new Set<string>();
    const heredocNames = new Set(cmd.heredocs.map((h) => h.name));
    const sources = cmd.sources.map((s) => (isHeredocRef(s, heredocNames) ? s : this.word(s, cmd, used)));
    const rawDest = this.word(cmd.dest, cmd, used);
    if (rawDest === '') {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `${cmd.kind.toUpperCase()} has an empty destination`, { location: cmd.location });
    }
    const destIsDir = rawDest.endsWith('/') || rawDest === '.' || rawDest.endsWith('/.') || sources.length > 1;
    const dest = path.resolve('/', this.config.WorkingDir || '/', rawDest);
    const inline = cmd.heredocs.map((h) => ({ name: h.name, content: this.heredocContent(h, cmd, used) }));
    const step: CopyStep = {
      kind: cmd.kind,
      sources,
      dest,
      destIsDir,
      link: cmd.link,
      parents: cmd.parents,
      excludes: cmd.excludes.map((e) => this.word(e, cmd, used)),
      keepGitDir: cmd.keepGitDir,
      inline,
      history: '',
      key: '',
      location: cmd.location,
    };
    if (cmd.from !== undefined) step.from = this.word(cmd.from, cmd, used);
    if (cmd.chown !== undefined) step.chown = this.word(cmd.chown, cmd, used);
    if (cmd.chmod !== undefined) step.chmod = this.word(cmd.chmod, cmd, used);
    if (cmd.checksum !== undefined) step.checksum = this.word(cmd.checksum, cmd, used);
    if (cmd.unpack !== undefined) step.unpack = cmd.unpack;
    const flags = [
      step.from !== undefined ? `--from=${step.from}` : '',
      step.chown !== undefined ? `--chown=${step.chown}` : '',
      step.chmod !== undefined ? `--chmod=${step.chmod}` : '',
      step.link ? '--link' : '',
      step.parents ? '--parents' : '',
    ].filter(Boolean);
    step.history = `${cmd.kind.toUpperCase()} ${[...flags, ...sources, rawDest].join(' ')}`;
    const { history: _h, key: _k, location: _l, ...content } = step;
    step.key = canonicalJSON({ ...content, args: this.argKey(used) });
    return step;
  }

  private heredocContent(h: Heredoc, cmd: Command, used: Set<string>): string {
    const text = h.chomp ? h.content.replace(/^\t+/gm, '') : h.content;
    if (!h.expand) return text;
    // Only variables are expanded in a heredoc body: quotes and backslashes stay as written.
    return text.replace(/\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/g, (m) => this.word(m, cmd, used));
  }

  private dispatchRun(cmd: RunCommand): RunStep {
    const used = new Set<string>();
    const mounts = cmd.mounts.map((m) => this.runMount(m.options, cmd, used));
    const heredocFiles: RunStep['heredocFiles'] = cmd.heredocs.map((h) => ({ name: h.name, content: h.chomp ? h.content.replace(/^\t+/gm, '') : h.content }));
    let argv: string[];
    if (!cmd.shellForm) argv = cmd.cmdLine.slice();
    else if (cmd.heredocs.length === 1 && /^\s*<<-?\s*["']?[A-Za-z0-9_.-]+["']?\s*$/.test(cmd.cmdLine.join(' '))) {
      // `RUN <<EOF`: the body is the script. A `#!` line picks the interpreter, as BuildKit does.
      const script = heredocFiles[0]!;
      if (script.content.startsWith('#!')) {
        script.path = `/dev/pipes/${script.name}`;
        argv = [script.path];
      } else argv = [...this.shell(), script.content];
    } else if (cmd.heredocs.length > 0) {
      // `RUN cmd <<EOF ...`: the shell receives the line and the bodies as one script.
      const script = [cmd.cmdLine.join(' '), ...cmd.heredocs.map((h) => `${h.content}${h.name}`)].join('\n');
      argv = [...this.shell(), script];
    } else argv = [...this.shell(), cmd.cmdLine.join(' ')];

    // Every ARG in scope reaches RUN's environment (ENV wins), so every one is part of the key.
    const env = new Map<string, string>();
    for (const [k, v] of this.args) if (v !== undefined) env.set(k, v);
    for (const name of PROXY_ARGS) {
      const v = this.options.buildArgs.get(name);
      if (v !== undefined && !env.has(name)) env.set(name, v);
    }
    const configEnv = this.config.Env ?? [];
    for (const e of configEnv) {
      const eq = e.indexOf('=');
      env.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
    }
    if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
    const argsInScope = [...this.args.entries()].filter(([k, v]) => v !== undefined && !configEnv.some((e) => e.startsWith(`${k}=`)));
    const argPrefix = argsInScope.length > 0 ? `|${argsInScope.length} ${argsInScope.map(([k, v]) => `${k}=${v}`).join(' ')} ` : '';
    const step: RunStep = {
      kind: 'run',
      argv,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      workdir: this.config.WorkingDir || '/',
      user: this.config.User ?? '',
      network: (cmd.network as RunStep['network'] | undefined) ?? 'default',
      insecure: cmd.security === 'insecure',
      mounts,
      heredocFiles,
      history: `RUN ${argPrefix}${argv.join(' ')}`,
      key: '',
      location: cmd.location,
    };
    // Proxy settings are not part of the key: a build behind a proxy makes the same layers.
    const keyEnv = step.env.filter((e) => !PROXY_ARGS.has(e.slice(0, e.indexOf('='))));
    step.key = canonicalJSON({ run: argv, env: keyEnv, workdir: step.workdir, user: step.user, network: step.network, insecure: step.insecure, mounts, heredocFiles });
    return step;
  }

  private runMount(options: Record<string, string>, cmd: RunCommand, used: Set<string>): RunMountStep {
    const o: Record<string, string> = {};
    for (const [k, v] of Object.entries(options)) o[k] = this.word(v, cmd, used);
    const type = o.type as RunMountStep['type'];
    const bool = (v: string | undefined, dflt: boolean): boolean => (v === undefined ? dflt : v.toLowerCase() !== 'false');
    const m: RunMountStep = {
      type,
      readonly: o.rw !== undefined ? !bool(o.rw, false) : bool(o.readonly, type === 'bind'),
      required: bool(o.required, false),
    };
    if (o.target !== undefined) m.target = path.resolve('/', this.config.WorkingDir || '/', o.target);
    if (o.source !== undefined) m.source = o.source;
    if (o.from !== undefined) m.from = o.from;
    if (o.id !== undefined) m.id = o.id;
    if (type === 'secret' && m.id === undefined && o.target !== undefined) m.id = path.basename(o.target);
    if (type === 'cache' && m.id === undefined) m.id = m.target;
    if (o.sharing !== undefined) {
      if (!['shared', 'private', 'locked'].includes(o.sharing)) {
        throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `unsupported sharing "${o.sharing}" in --mount`, {
          location: cmd.location,
          hint: 'use sharing=shared, private or locked',
        });
      }
      m.sharing = o.sharing as RunMountStep['sharing'];
    } else if (type === 'cache') m.sharing = 'shared';
    for (const key of ['mode', 'uid', 'gid'] as const) {
      const v = o[key];
      if (v === undefined) continue;
      const n = key === 'mode' ? Number.parseInt(v, 8) : Number(v);
      if (!Number.isInteger(n) || n < 0) {
        throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid ${key}=${v} in --mount`, { location: cmd.location });
      }
      m[key] = n;
    }
    if (o.env !== undefined) m.env = o.env;
    if (o.size !== undefined) m.size = o.size;
    return m;
  }
}

function relocate(err: unknown, location: SourceLocation): unknown {
  if (err instanceof LadingError && !err.location) {
    return new LadingError(err.code, err.message, { location, hint: err.hint, cause: err, details: err.details });
  }
  return err;
}

/** The config a stage starts with: the base's, minus its ONBUILD triggers (they run once). */
function inheritConfig(base: ContainerConfig | undefined): ContainerConfig {
  if (!base) return { Env: [`PATH=${DEFAULT_PATH}`] };
  const copy = JSON.parse(JSON.stringify(base)) as ContainerConfig;
  delete copy.OnBuild;
  return copy;
}

function setEnv(config: ContainerConfig, key: string, value: string): void {
  const env = (config.Env ?? []).slice();
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) env[i] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
  config.Env = env;
}

function isHeredocRef(source: string, names: Set<string>): boolean {
  const m = /^<<-?\s*["']?([^"']+)["']?$/.exec(source);
  return m !== null && names.has(m[1]!);
}

/** `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ... */
export function expandPorts(spec: string, location: SourceLocation): string[] {
  const m = /^(?:[^:]*:)?(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/.exec(spec);
  const proto = (m?.[3] ?? 'tcp').toLowerCase();
  if (!m || !['tcp', 'udp', 'sctp'].includes(proto)) {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid port "${spec}" in EXPOSE`, {
      location,
      hint: 'write a port as NUMBER, NUMBER/tcp, NUMBER/udp or a range START-END',
    });
  }
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start < 0 || end > 65535 || end < start) {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid port range "${spec}" in EXPOSE`, { location });
  }
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

function isSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) > 0 && Number(s) < 65;
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(name)) return true;
  return /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name);
}

/** Go's %q-ish rendering of a string list, as Docker's history uses. */
function goList(values: string[]): string {
  return `[${values.map((v) => JSON.stringify(v)).join(' ')}]`;
}
