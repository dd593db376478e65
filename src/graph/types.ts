/**
 * The build graph: what the front end hands the engine. Commands keep their words as written
 * (variables unexpanded) because their meaning depends on the environment at the moment they run,
 * which includes the base image's config; `frontend/dispatch.ts` expands them then.
 */
import type { SourceLocation } from '../errors.ts';

/** A here-document of RUN, COPY or ADD, as the parser found it. */
export interface Heredoc {
  name: string;
  /** The body exactly as written, line endings included; `<<-` tab stripping comes later. */
  content: string;
  /** False when any part of the name was quoted (`<<'EOF'`, `<<E"O"F`): the body is taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body and the terminator may be indented with tabs. */
  chomp: boolean;
  /** `3<<EOF` gives 3; no number gives 0. */
  fileDescriptor: number;
}

interface CommandBase {
  location: SourceLocation;
  /** The instruction as written (continuations joined), for history and error messages. */
  original: string;
}

export interface FromCommand extends CommandBase {
  kind: 'from';
  image: string;
  stageName?: string;
  platform?: string;
}

/**
 * A `RUN --mount=...` flag split into its options: keys canonical (`dst` → `target`, `ro` →
 * `readonly`, ...), bare keys as `'true'`, values unexpanded. No `type` means bind.
 */
export interface MountSpec {
  raw: string;
  options: Record<string, string>;
}

export interface RunCommand extends CommandBase {
  kind: 'run';
  /** Shell form: one string for the shell; exec form: the argv. */
  shellForm: boolean;
  cmdLine: string[];
  heredocs: Heredoc[];
  mounts: MountSpec[];
  network?: string;
  security?: string;
}

export interface CmdCommand extends CommandBase {
  kind: 'cmd' | 'entrypoint';
  shellForm: boolean;
  cmdLine: string[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvCommand extends CommandBase {
  kind: 'env' | 'label';
  pairs: KeyValue[];
}

export interface CopyCommand extends CommandBase {
  kind: 'copy' | 'add';
  /** As written; heredoc openers (`<<EOF`) stand for their bodies in `heredocs`. */
  sources: string[];
  dest: string;
  /** A stage name, a stage index or an image; never expanded (BuildKit refuses variables here). */
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  /** `--exclude` patterns, never expanded (as in BuildKit). */
  excludes: string[];
  /** ADD --checksum */
  checksum?: string;
  /** ADD --keep-git-dir */
  keepGitDir: boolean;
  /** ADD --unpack (default: true for local archives) */
  unpack?: boolean;
  heredocs: Heredoc[];
}

export interface ArgCommand extends CommandBase {
  kind: 'arg';
  args: { key: string; value?: string }[];
}

export interface SimpleCommand extends CommandBase {
  kind: 'user' | 'workdir' | 'stopsignal' | 'maintainer';
  value: string;
}

export interface ListCommand extends CommandBase {
  kind: 'expose' | 'volume' | 'shell';
  values: string[];
}

export interface OnbuildCommand extends CommandBase {
  kind: 'onbuild';
  /** The trigger instruction, as it will be stored in the image config. */
  expression: string;
}

export interface HealthcheckCommand extends CommandBase {
  kind: 'healthcheck';
  /** `["NONE"]` disables the base image's check. */
  test: string[];
  intervalNs?: number;
  timeoutNs?: number;
  startPeriodNs?: number;
  startIntervalNs?: number;
  retries?: number;
}

export type Command =
  | RunCommand
  | CmdCommand
  | EnvCommand
  | CopyCommand
  | ArgCommand
  | SimpleCommand
  | ListCommand
  | OnbuildCommand
  | HealthcheckCommand;

export type CommandKind = Command['kind'];

export interface Stage {
  /** Position among the Dockerfile's stages (what `--from=0` names). */
  index: number;
  name?: string;
  from: FromCommand;
  commands: Command[];
  location: SourceLocation;
}

/** What a stage starts from, after FROM's words are expanded with the global ARGs. */
export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string };

export interface StageNode {
  stage: Stage;
  base: StageBase;
  /** `FROM --platform=...` after expansion, when given. */
  platform?: string;
  /** Stages this one reads: its base, `COPY --from`, `RUN --mount=from=` (only earlier stages are allowed). */
  dependsOn: number[];
  /** Images (not stages) named by `COPY --from` or `RUN --mount=from=`. */
  imageInputs: string[];
}

export interface BuildWarning {
  message: string;
  location?: SourceLocation;
}

export interface BuildGraph {
  file: string;
  /** Every stage of the Dockerfile, in file order. */
  stages: StageNode[];
  /** The stage the build produces. */
  target: number;
  /** Stages the target needs, in an order where each comes after all it depends on. */
  order: number[];
  /** Groups of stages from `order` that can run at the same time (each group after the previous). */
  waves: number[][];
  /**
   * ARGs declared before the first FROM, with their values after build args (undefined when they
   * have none). A stage's `ARG NAME` without a value takes its value from here.
   */
  globalArgs: Map<string, string | undefined>;
  escapeToken: '\\' | '`';
  warnings: BuildWarning[];
}
