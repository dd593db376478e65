/**
 * Runs a stage's commands against its evolving state, as BuildKit's dispatcher does: words are
 * expanded with the environment at that point, metadata instructions change the config, and the
 * rest become steps for the engine. Pure: no files, no network. The engine supplies the base
 * image's config.
 *
 * The environment is BuildKit's "state env": it starts as the base image's ENV (PATH added when
 * missing), then every ENV and every ARG that has a value sets a name in it, a later one
 * replacing an earlier one. So an ENV overrides an ARG declared before it, an ARG declared after
 * an inherited ENV overrides that for the build (never in the image config), and RUN sees exactly
 * this environment. A stage based on another stage starts from that stage's environment and
 * ARGs; a stage based on an image starts with none of the Dockerfile's ARGs.
 */
import path from 'node:path/posix';
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import { ChmodError, parseChmod } from '../graph/chmod.ts';
import type {
  ArgCommand,
  CmdCommand,
  Command,
  CopyCommand,
  EnvCommand,
  HealthcheckCommand,
  ListCommand,
  RunCommand,
  SimpleCommand,
} from '../graph/types.ts';
import type { ContainerConfig, HealthConfig } from '../image/types.ts';
import { canonicalJSON } from '../image/json.ts';
import { proxyEnv } from './args.ts';
import { checkMount, parseGoBool } from './instructions.ts';
import { chompHeredocContent, parseHeredocWord } from './parser.ts';
import { ShellLex, locateShellError } from './shell.ts';

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
  /** Expanded sources, as written (relative to the context or the `from` root); heredoc words as written. */
  sources: string[];
  /** Absolute destination; `destIsDir` when it was written with a trailing `/`, or as `.` or empty. */
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
  /** Inline files from heredocs, by source name, content already chomped and expanded. */
  inline: { name: string; content: string }[];
  history: string;
  key: string;
  location: SourceLocation;
}

export interface RunMountStep {
  type: 'bind' | 'cache' | 'secret' | 'tmpfs' | 'ssh';
  /** Absolute (relative targets are resolved against the working directory). */
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
  /** The stage's environment (ENV and ARGs in scope) plus proxy build args; never stored in the image. */
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

/** What a stage hands the stages based on it, besides its image config. */
export interface StageEnvironment {
  env: [string, string][];
  args: DeclaredArg[];
}

interface DeclaredArg {
  key: string;
  value?: string;
}

export interface DispatchOptions {
  escapeToken: '\\' | '`';
  /** The base image's runtime config (undefined for scratch). */
  baseConfig?: ContainerConfig;
  buildArgs: ReadonlyMap<string, string>;
  /** ARGs declared before the first FROM, with their values (undefined when they have none). */
  globalArgs: ReadonlyMap<string, string | undefined>;
  /** The automatic platform ARGs of the build (TARGETPLATFORM is the build's target, whatever FROM --platform says). */
  platformArgs: ReadonlyMap<string, string>;
  /** When the stage is based on another stage: that stage's environment at its end. */
  inherit?: StageEnvironment;
  /** The network of RUN steps without `--network` (the build's `--network`). */
  network?: 'default' | 'none' | 'host';
}

export class StageDispatcher {
  /** The config as it stands after the commands dispatched so far. */
  readonly config: ContainerConfig;
  /** `MAINTAINER`, which lives outside the runtime config. */
  author?: string;
  private readonly lex: ShellLex;
  /** Heredoc bodies are expanded as a shell would: quotes are text, `\` escapes (always `\`). */
  private readonly heredocLex = new ShellLex('\\', { skipProcessQuotes: true });
  private readonly env: Map<string, string>;
  private readonly args: DeclaredArg[];
  private readonly options: DispatchOptions;
  private cmdSet = false;

  constructor(options: DispatchOptions) {
    this.options = options;
    this.lex = new ShellLex(options.escapeToken);
    this.config = inheritConfig(options.baseConfig);
    this.env = new Map(options.inherit?.env ?? (this.config.Env ?? []).map(splitEnv));
    this.args = [...(options.inherit?.args ?? [])];
  }

  /** The environment and ARGs a stage based on this one starts with. */
  environment(): StageEnvironment {
    return { env: [...this.env], args: this.args.map((a) => ({ ...a })) };
  }

  private isArg(name: string): boolean {
    return this.args.some((a) => a.key === name);
  }

  private expandWith(lex: ShellLex, text: string, cmd: Command, used?: Set<string>): string {
    try {
      const result = lex.processWord(text, this.env);
      if (used) for (const name of result.matched) if (this.isArg(name)) used.add(name);
      return result.value;
    } catch (err) {
      throw locateWordError(err, cmd.location, text);
    }
  }

  private word(text: string, cmd: Command, used?: Set<string>): string {
    return this.expandWith(this.lex, text, cmd, used);
  }

  private words(text: string, cmd: Command, used?: Set<string>): string[] {
    try {
      const r = this.lex.processWords(text, this.env);
      if (used) for (const name of r.matched) if (this.isArg(name)) used.add(name);
      return r.words;
    } catch (err) {
      throw locateWordError(err, cmd.location, text);
    }
  }

  private withShell(args: string[]): string[] {
    const shell = this.config.Shell && this.config.Shell.length > 0 ? this.config.Shell : DEFAULT_SHELL;
    return [...shell, args.join(' ')];
  }

  /** Values of the ARGs this step depends on, for its cache key. */
  private argKey(used: Set<string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...used].sort()) out[name] = this.env.get(name) ?? '';
    return out;
  }

  dispatch(cmd: Command): Step | undefined {
    switch (cmd.kind) {
      case 'arg':
        return this.dispatchArg(cmd);
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
        return this.configStep(cmd, `SHELL [${cmd.values.join(' ')}]`, { shell: cmd.values });
      case 'user':
        return this.dispatchUser(cmd);
      case 'workdir':
        return this.dispatchWorkdir(cmd);
      case 'stopsignal':
        return this.dispatchStopsignal(cmd);
      case 'onbuild':
        // Stored for images built on this one; BuildKit records no history entry for it.
        this.config.OnBuild = [...(this.config.OnBuild ?? []), cmd.expression];
        return undefined;
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

  /**
   * `ARG NAME[=default]`: a build arg wins, then the default (expanded now), then the value of a
   * global ARG of that name, then an automatic platform ARG. No value leaves the name unset.
   */
  private dispatchArg(cmd: ArgCommand): ConfigStep {
    const { buildArgs, globalArgs, platformArgs } = this.options;
    const shown: string[] = [];
    for (const a of cmd.args) {
      let value: string | undefined;
      if (buildArgs.has(a.key)) value = buildArgs.get(a.key);
      else if (a.value !== undefined) value = this.word(a.value, cmd);
      else value = globalArgs.get(a.key) ?? platformArgs.get(a.key);
      if (value !== undefined) this.env.set(a.key, value);
      this.args.push(value === undefined ? { key: a.key } : { key: a.key, value });
      shown.push(value === undefined ? a.key : `${a.key}=${value}`);
    }
    return this.configStep(cmd, `ARG ${shown.join(' ')}`, { arg: shown });
  }

  private dispatchEnv(cmd: EnvCommand): ConfigStep {
    const used = new Set<string>();
    // Every pair is expanded with the environment from before the instruction (`ENV a=1 b=$a` reads the old a).
    const pairs = cmd.pairs.map((p) => ({ key: this.word(p.key, cmd, used), value: this.word(p.value, cmd, used) }));
    for (const p of pairs) {
      this.env.set(p.key, p.value);
      setEnv(this.config, p.key, p.value);
    }
    return this.configStep(cmd, `ENV ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, { env: pairs }, used);
  }

  private dispatchLabel(cmd: EnvCommand): ConfigStep {
    const used = new Set<string>();
    const pairs = cmd.pairs.map((p) => ({ key: this.word(p.key, cmd, used), value: this.word(p.value, cmd, used) }));
    this.config.Labels = { ...(this.config.Labels ?? {}) };
    for (const p of pairs) this.config.Labels[p.key] = p.value;
    return this.configStep(cmd, `LABEL ${pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`, { label: pairs }, used);
  }

  /** CMD and ENTRYPOINT words are not expanded: a shell form runs in SHELL, which expands them. */
  private dispatchCmd(cmd: CmdCommand): ConfigStep {
    let args = cmd.shellForm ? (cmd.cmdLine.length === 0 ? [] : [cmd.cmdLine.join(' ')]) : cmd.cmdLine.slice();
    if (cmd.shellForm) args = this.withShell(args);
    if (cmd.kind === 'cmd') {
      this.config.Cmd = args;
      // BuildKit marks every CMD this way (a Windows-era flag, kept for Docker image compatibility).
      this.config.ArgsEscaped = true;
      this.cmdSet = true;
    } else {
      this.config.Entrypoint = args.length === 0 ? null : args;
      // An ENTRYPOINT resets the CMD the base image set, unless this stage set one already.
      if (!this.cmdSet) this.config.Cmd = null;
    }
    return this.configStep(cmd, `${cmd.kind.toUpperCase()} ${goList(args)}`, { [cmd.kind]: args });
  }

  private dispatchExpose(cmd: ListCommand): ConfigStep {
    const used = new Set<string>();
    const words: string[] = [];
    for (const raw of cmd.values) words.push(...this.words(raw, cmd, used));
    const ports = words.flatMap((w) => expandPorts(w, cmd.location));
    this.config.ExposedPorts = { ...(this.config.ExposedPorts ?? {}) };
    for (const p of ports) this.config.ExposedPorts[p] = {};
    return this.configStep(cmd, `EXPOSE ${words.join(' ')}`, { expose: ports }, used);
  }

  private dispatchVolume(cmd: ListCommand): ConfigStep {
    const used = new Set<string>();
    const vols = cmd.values.map((v) => this.word(v, cmd, used));
    if (vols.some((v) => v === '')) {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'VOLUME specified can not be an empty string', {
        location: cmd.location,
        hint: 'a variable in it expanded to nothing; give it a value',
      });
    }
    this.config.Volumes = { ...(this.config.Volumes ?? {}) };
    for (const v of vols) this.config.Volumes[v] = {};
    return this.configStep(cmd, `VOLUME [${vols.join(' ')}]`, { volume: vols }, used);
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
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid signal: ${signal}`, {
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
    // BuildKit prints the config with Go's %+v.
    const history =
      `HEALTHCHECK {Test:[${cmd.test.join(' ')}] Interval:${goDuration(hc.Interval ?? 0)} Timeout:${goDuration(hc.Timeout ?? 0)} ` +
      `StartPeriod:${goDuration(hc.StartPeriod ?? 0)} StartInterval:${goDuration(hc.StartInterval ?? 0)} Retries:${hc.Retries ?? 0}}`;
    return this.configStep(cmd, history, { healthcheck: hc });
  }

  private dispatchCopy(cmd: CopyCommand): CopyStep {
    const used = new Set<string>();
    const upper = cmd.kind.toUpperCase();
    const heredocNames = new Set(cmd.heredocs.map((h) => h.name));
    const isInline = (s: string): boolean => {
      const h = cmd.heredocs.length > 0 ? parseHeredocWord(s) : null;
      return h !== null && heredocNames.has(h.name);
    };
    // BuildKit never expands --from and --exclude; the rest is expanded.
    const sources = cmd.sources.map((s) => (isInline(s) ? s : this.word(s, cmd, used)));
    const rawDest = this.word(cmd.dest, cmd, used);
    // An empty destination is the working directory, as `.` is.
    const destIsDir = rawDest === '' || rawDest === '.' || rawDest.endsWith('/') || rawDest.endsWith('/.');
    const dest = path.resolve('/', this.config.WorkingDir || '/', rawDest);
    const inline = cmd.heredocs.map((h) => {
      const body = h.chomp ? chompHeredocContent(h.content) : h.content;
      return { name: h.name, content: h.expand ? this.expandWith(this.heredocLex, body, cmd, used) : body };
    });
    const step: CopyStep = {
      kind: cmd.kind,
      sources,
      dest,
      destIsDir,
      link: cmd.link,
      parents: cmd.parents,
      excludes: cmd.excludes.slice(),
      keepGitDir: cmd.keepGitDir,
      inline,
      history: '',
      key: '',
      location: cmd.location,
    };
    if (cmd.from !== undefined) step.from = cmd.from;
    if (cmd.chown !== undefined) {
      const chown = this.word(cmd.chown, cmd, used);
      if (chown !== '') step.chown = chown;
    }
    if (cmd.chmod !== undefined) {
      const chmod = this.word(cmd.chmod, cmd, used);
      if (chmod !== '') {
        try {
          parseChmod(chmod);
        } catch (err) {
          if (!(err instanceof ChmodError)) throw err;
          throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, err.message, {
            location: cmd.location,
            hint: 'use an octal mode such as 755 or symbolic clauses such as u+x,go-w or a=rX',
          });
        }
        step.chmod = chmod;
      }
    }
    if (cmd.checksum !== undefined) {
      const checksum = this.word(cmd.checksum, cmd, used);
      if (checksum !== '') {
        const paths = sources.filter((s) => !isInline(s));
        const fail = (message: string, hint: string): never => {
          throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, { location: cmd.location, hint });
        };
        if (paths.length !== 1 || inline.length > 0) fail("checksum can't be specified for multiple sources", 'give --checksum to an ADD with one URL');
        if (!/^https?:\/\//.test(paths[0]!) && !/^git@|\.git(#|$)/.test(paths[0]!)) fail('checksum requires HTTP(S) or Git sources', 'use --checksum with an https:// source');
        step.checksum = checksum;
      }
    }
    if (cmd.unpack !== undefined) step.unpack = cmd.unpack;
    if (sources.some((s) => !isInline(s) && /^https?:\/\//.test(s)) && cmd.kind === 'copy') {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, "source can't be a URL for COPY", { location: cmd.location, hint: 'use ADD to download a URL' });
    }
    // BuildKit's history line leaves out --from and --link and shows heredocs last; ours keeps the
    // instruction's order and flags, which the engine also shows as the step's progress text.
    const shown = [
      upper,
      ...(step.from !== undefined ? [`--from=${step.from}`] : []),
      ...(step.chown !== undefined ? [`--chown=${step.chown}`] : []),
      ...(step.chmod !== undefined ? [`--chmod=${step.chmod}`] : []),
      ...(step.link ? ['--link'] : []),
      ...(step.parents ? ['--parents'] : []),
      ...sources,
      rawDest,
    ];
    step.history = shown.join(' ');
    const { history: _h, key: _k, location: _l, ...content } = step;
    step.key = canonicalJSON({ ...content, args: this.argKey(used) });
    return step;
  }

  private dispatchRun(cmd: RunCommand): RunStep {
    const mounts = this.runMounts(cmd);
    const heredocFiles: RunStep['heredocFiles'] = cmd.heredocs.map((h) => ({ name: h.name, content: h.chomp ? chompHeredocContent(h.content) : h.content }));
    let args = cmd.cmdLine.slice();
    if (cmd.heredocs.length > 0) {
      if (!cmd.shellForm || args.length !== 1) {
        throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'a RUN with heredocs must use the shell form', { location: cmd.location });
      }
      const alone = parseHeredocWord(args[0]!);
      if (alone !== null && cmd.heredocs.length === 1) {
        // `RUN <<EOF`: the body is the script. A `#!` line makes it an executable file instead.
        const script = heredocFiles[0]!;
        if (script.content.startsWith('#!')) {
          script.path = `/dev/pipes/${script.name}`;
          args = [script.path];
        } else args = [script.content];
      } else {
        // `RUN cmd <<EOF ...`: the shell gets the line and the bodies as one script (unchomped: the shell does `<<-`).
        args = [[args[0]!, ...cmd.heredocs.map((h) => `${h.content}${h.name}`)].join('\n')];
      }
    }
    const argv = cmd.shellForm ? this.withShell(args) : args;

    const env = new Map(this.env);
    const proxies = new Set<string>();
    for (const [name, value] of proxyEnv(this.options.buildArgs)) {
      if (env.has(name)) continue;
      env.set(name, value);
      proxies.add(name);
    }
    const step: RunStep = {
      kind: 'run',
      argv,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      workdir: this.config.WorkingDir || '/',
      user: this.config.User ?? '',
      // Part of the key like the rest of the step: a step cached with the network must not be
      // reused by a build that asked for none.
      network: (cmd.network as RunStep['network'] | undefined) ?? this.options.network ?? 'default',
      insecure: cmd.security === 'insecure',
      mounts,
      heredocFiles,
      history: `RUN ${this.argsPrefix()}${argv.join(' ')}`,
      key: '',
      location: cmd.location,
    };
    // Proxies passed as build args are not part of the key: a build behind a proxy makes the same layers.
    const keyEnv = [...env].filter(([k]) => !proxies.has(k)).map(([k, v]) => `${k}=${v}`);
    step.key = canonicalJSON({ run: argv, env: keyEnv, workdir: step.workdir, user: step.user, network: step.network, insecure: step.insecure, mounts, heredocFiles });
    return step;
  }

  /** BuildKit's `|N NAME=value ...` before a RUN's command in history: every ARG in scope, as RUN sees it. */
  private argsPrefix(): string {
    const shown = new Map<string, string>();
    for (const a of this.args) shown.set(a.key, this.env.get(a.key) ?? a.value ?? '');
    if (shown.size === 0) return '';
    return `|${shown.size} ${[...shown].map(([k, v]) => `${k}=${v}`).join(' ')} `;
  }

  private runMounts(cmd: RunCommand): RunMountStep[] {
    let sshCount = 0;
    return cmd.mounts.map((spec) => {
      const o: Record<string, string> = {};
      for (const [k, v] of Object.entries(spec.options)) o[k] = k === 'from' ? v : this.word(v, cmd);
      const bad = (message: string, hint?: string): never => {
        throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, { location: cmd.location, hint });
      };
      const type = checkMount(o, bad) as RunMountStep['type'];
      const bool = (v: string | undefined): boolean | undefined => (v === undefined ? undefined : parseGoBool(v));
      const rw = bool(o.rw);
      const ro = bool(o.readonly);
      const m: RunMountStep = {
        type,
        // Read-only unless asked otherwise, except caches and tmpfs.
        readonly: ro ?? (rw !== undefined ? !rw : type !== 'cache' && type !== 'tmpfs'),
        required: bool(o.required) ?? false,
      };
      const workdir = this.config.WorkingDir || '/';
      if (o.target !== undefined && o.target !== '') m.target = path.resolve('/', workdir, o.target);
      if (m.target === '/') bad(`invalid mount target "${o.target}"`, 'mount somewhere below /');
      if (o.source !== undefined && o.source !== '') m.source = o.source;
      if (o.from !== undefined && o.from !== '' && type !== 'tmpfs') m.from = o.from;
      if (o.id !== undefined && o.id !== '') m.id = o.id;
      if (o.env !== undefined && o.env !== '') m.env = o.env;
      if (o.size !== undefined && o.size !== '') m.size = o.size;
      if (type === 'cache') {
        // The cache is named by its id, which defaults to the target as written.
        m.id ??= o.target;
        m.sharing = (o.sharing?.toLowerCase() as RunMountStep['sharing'] | undefined) ?? 'shared';
      }
      if (type === 'secret') {
        // `source` names the secret as `id` does; the id defaults to the target's file name.
        if (m.source !== undefined) m.id = m.source;
        m.id ??= path.basename(m.target!);
        if (m.target === undefined && m.env === undefined) m.target = `/run/secrets/${path.basename(m.id)}`;
      }
      if (type === 'ssh') {
        m.id ??= 'default';
        m.target ??= `/run/buildkit/ssh_agent.${sshCount}`;
        sshCount++;
      }
      if (o.mode !== undefined) m.mode = Number.parseInt(o.mode, 8);
      if (o.uid !== undefined) m.uid = Number(o.uid);
      if (o.gid !== undefined) m.gid = Number(o.gid);
      return m;
    });
  }
}

/**
 * An expansion error, placed in the Dockerfile: at the offending character when the word is on the
 * instruction's first line, else at the instruction.
 */
export function locateWordError(err: unknown, location: SourceLocation, word: string): unknown {
  if (!(err instanceof LadingError) || err.location) return err;
  let at = location;
  const i = word === '' || location.text === undefined ? -1 : location.text.indexOf(word, (location.column ?? 1) - 1);
  if (i >= 0) at = { ...location, column: i + 1 };
  const placed = locateShellError(err, at);
  if (placed !== err) return placed;
  return new LadingError(err.code, err.message, { location: at, hint: err.hint, cause: err, details: err.details });
}

function splitEnv(e: string): [string, string] {
  const eq = e.indexOf('=');
  return eq < 0 ? [e, ''] : [e.slice(0, eq), e.slice(eq + 1)];
}

/**
 * The config a stage starts with: the base's, minus its ONBUILD triggers (they run once and are
 * not passed on), with PATH set when the base has none (BuildKit always sets it).
 */
function inheritConfig(base: ContainerConfig | undefined): ContainerConfig {
  const copy = base ? (JSON.parse(JSON.stringify(base)) as ContainerConfig) : {};
  delete copy.OnBuild;
  const env = copy.Env ?? [];
  if (!env.some((e) => splitEnv(e)[0] === 'PATH')) copy.Env = [...env, `PATH=${DEFAULT_PATH}`];
  return copy;
}

function setEnv(config: ContainerConfig, key: string, value: string): void {
  const env = (config.Env ?? []).slice();
  const i = env.findIndex((e) => splitEnv(e)[0] === key);
  if (i >= 0) env[i] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
  config.Env = env;
}

/**
 * `80`, `80/udp`, `8000-8002/tcp`, `127.0.0.1:8080:80` → `80/tcp`, ... (Docker's port specs: an IP
 * and host port may come first; only the container port is exposed).
 */
export function expandPorts(spec: string, location: SourceLocation): string[] {
  const fail = (message: string): never => {
    throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, message, {
      location,
      hint: 'write a port as NUMBER, NUMBER/tcp, NUMBER/udp, NUMBER/sctp or a range START-END',
    });
  };
  const slash = spec.lastIndexOf('/');
  const portPart = slash < 0 ? spec : spec.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : spec.slice(slash + 1).toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) fail(`invalid proto: ${spec.slice(slash + 1)}`);
  const container = portPart.slice(portPart.lastIndexOf(':') + 1);
  const m = /^(\d+)(?:-(\d+))?$/.exec(container);
  if (!m) return fail(`invalid containerPort: ${container}`);
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535) fail(`invalid containerPort: ${container}`);
  if (end < start) fail(`invalid range specified for containerPort: ${container}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'UNUSED', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/** moby/sys/signal.ParseSignal on Linux: a non-zero number, or a name with or without SIG. */
function isSignal(s: string): boolean {
  if (/^[+-]?\d+$/.test(s)) return Number(s) !== 0;
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(name)) return true;
  const rt = /^RTMIN(?:\+(\d+))?$|^RTMAX(?:-(\d+))?$/.exec(name);
  return rt !== null && Number(rt[1] ?? rt[2] ?? 0) <= 15;
}

/** Go's `%q` of a string list, as BuildKit's history prints CMD and ENTRYPOINT. */
function goList(values: string[]): string {
  return `[${values.map(goQuote).join(' ')}]`;
}

function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's time.Duration.String() for whole nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let n = Math.abs(ns);
  if (n < 1e3) return `${sign}${n}ns`;
  if (n < 1e6) return `${sign}${trimFraction(n / 1e3)}µs`;
  if (n < 1e9) return `${sign}${trimFraction(n / 1e6)}ms`;
  let out = '';
  const h = Math.floor(n / 3600e9);
  n -= h * 3600e9;
  const m = Math.floor(n / 60e9);
  n -= m * 60e9;
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  return `${sign}${out}${trimFraction(n / 1e9)}s`;
}

function trimFraction(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(9).replace(/0+$/, '');
}
