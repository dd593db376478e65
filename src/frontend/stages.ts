/**
 * Typed commands → BuildGraph: stages and their names, global ARGs, what each stage starts from
 * and reads, the target, and which stages the target needs (only those are dispatched).
 *
 * Stage references follow BuildKit's dockerfile2llb:
 * - `FROM name` names a stage only when an earlier stage has exactly that (lowercased) name;
 *   otherwise it is an image reference. `--from` and `--target` match names case-insensitively,
 *   `--from` also takes an index.
 * - `--from` is never expanded (BuildKit refuses variables there, see instructions.ts), so the
 *   graph is known before anything runs.
 * - A stage may only copy from or mount a stage defined before it; a cycle is reported first.
 * - FROM lines of every stage are expanded and checked, reachable or not (BuildKit does the same);
 *   the other instructions of stages the target does not need are never looked at.
 */
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type { ArgCommand, BuildGraph, BuildWarning, Command, FromCommand, Stage, StageBase, StageNode } from '../graph/types.ts';
import { PLATFORM_ARG_NAMES, PROXY_ARGS, isBuilderArg } from './args.ts';
import { locateWordError } from './dispatch.ts';
import type { ParsedCommand } from './instructions.ts';
import { ShellLex } from './shell.ts';
import { didYouMean } from './suggest.ts';

export interface GraphOptions {
  file: string;
  escapeToken: '\\' | '`';
  buildArgs: ReadonlyMap<string, string>;
  /** The automatic platform ARGs (TARGETPLATFORM, ...), visible in FROM lines. */
  platformArgs: ReadonlyMap<string, string>;
  target?: string;
}

/** Split commands into stages and resolve what each stage needs. Throws with every problem found. */
export function buildGraph(commands: ParsedCommand[], options: GraphOptions): BuildGraph {
  const errors: LadingError[] = [];
  const warnings: BuildWarning[] = [];
  const lex = new ShellLex(options.escapeToken);
  const { globalArgCommands, stages } = splitStages(commands, errors);
  const { globalArgs, globalEnv } = metaArgs(globalArgCommands, lex, options, errors);
  const names = stageNames(stages, warnings);

  const nodes: StageNode[] = stages.map((stage) => resolveStage(stage, stages, names, lex, globalEnv, errors, warnings));
  if (stages.length === 0 && errors.length === 0) {
    errors.push(
      new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'the Dockerfile has no FROM instruction', {
        location: { file: options.file, line: 1 },
        hint: 'start the build with FROM IMAGE (or FROM scratch)',
      }),
    );
  }
  const cycle = findCycle(nodes, options.file);
  if (cycle) errors.push(cycle);
  throwAll(errors);

  const target = findTarget(options.target, stages, names.final, options.file);
  const order = dependencyOrder(target, nodes);
  for (const index of order) checkBackwardRefs(nodes[index]!, nodes, names.final, errors);
  throwAll(errors);
  const waves = parallelWaves(order, nodes);

  const declared = new Set<string>(globalArgs.keys());
  for (const index of order) {
    for (const cmd of nodes[index]!.stage.commands) if (cmd.kind === 'arg') for (const a of cmd.args) declared.add(a.key);
  }
  const unused = [...options.buildArgs.keys()].filter(
    (k) => !declared.has(k) && !PROXY_ARGS.has(k) && !(PLATFORM_ARG_NAMES as readonly string[]).includes(k) && !isBuilderArg(k),
  );
  if (unused.length > 0) {
    const list = unused.sort().join(', ');
    warnings.push({
      message: `build argument${unused.length > 1 ? 's' : ''} ${list} ${unused.length > 1 ? 'were' : 'was'} not consumed by any ARG of the stages built`,
    });
  }

  return { file: options.file, stages: nodes, target, order, waves, globalArgs, escapeToken: options.escapeToken, warnings };
}

function splitStages(commands: ParsedCommand[], errors: LadingError[]): { globalArgCommands: ArgCommand[]; stages: Stage[] } {
  const globalArgCommands: ArgCommand[] = [];
  const stages: Stage[] = [];
  let current: Stage | undefined;
  for (const cmd of commands) {
    if (cmd.kind === 'from') {
      current = { index: stages.length, from: cmd, commands: [], location: cmd.location };
      if (cmd.stageName !== undefined) current.name = cmd.stageName;
      stages.push(current);
    } else if (current) {
      current.commands.push(cmd);
    } else if (cmd.kind === 'arg') {
      globalArgCommands.push(cmd);
    } else {
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `${cmd.kind.toUpperCase()} comes before the first FROM`, {
          location: cmd.location,
          hint: 'only ARG may come before FROM; move this instruction into a stage',
        }),
      );
    }
  }
  return { globalArgCommands, stages };
}

/**
 * The ARGs before the first FROM. They are expanded in order with the automatic platform ARGs and
 * the ARGs above them; a build arg replaces a declared ARG's value. An ARG without a value leaves
 * whatever value its name already has (a platform ARG, an earlier declaration).
 */
function metaArgs(
  commands: ArgCommand[],
  lex: ShellLex,
  options: GraphOptions,
  errors: LadingError[],
): { globalArgs: Map<string, string | undefined>; globalEnv: Map<string, string> } {
  const globalEnv = new Map<string, string>();
  for (const [k, v] of options.platformArgs) globalEnv.set(k, options.buildArgs.get(k) ?? v);
  const declared: string[] = [];
  for (const cmd of commands) {
    for (const arg of cmd.args) {
      declared.push(arg.key);
      const value = options.buildArgs.get(arg.key) ?? (arg.value === undefined ? undefined : expand(lex, arg.value, globalEnv, cmd, errors));
      if (value !== undefined) globalEnv.set(arg.key, value);
    }
  }
  const globalArgs = new Map<string, string | undefined>();
  for (const key of declared) globalArgs.set(key, globalEnv.get(key));
  return { globalArgs, globalEnv };
}

interface StageNames {
  /** For each stage, the names defined before it (what its FROM may name). */
  before: Map<string, number>[];
  /** Every name, a later duplicate winning (what `--from` and `--target` see). */
  final: Map<string, number>;
}

/** BuildKit lets a later stage reuse a name (it only lints that); later references see the later one. */
function stageNames(stages: Stage[], warnings: BuildWarning[]): StageNames {
  const before: Map<string, number>[] = [];
  const current = new Map<string, number>();
  for (const stage of stages) {
    before.push(new Map(current));
    if (stage.name === undefined) continue;
    if (current.has(stage.name)) {
      warnings.push({
        message: `duplicate stage name "${stage.name}" (stage ${current.get(stage.name)} and ${stage.index}); references after this line use stage ${stage.index}`,
        location: stage.location,
      });
    }
    current.set(stage.name, stage.index);
  }
  return { before, final: current };
}

function expand(lex: ShellLex, word: string, env: ReadonlyMap<string, string>, cmd: Command | FromCommand, errors: LadingError[]): string {
  try {
    return lex.processWord(word, env).value;
  } catch (err) {
    if (!(err instanceof LadingError)) throw err;
    errors.push(locateWordError(err, cmd.location, word) as LadingError);
    return word;
  }
}

/** The command's location, pointing at `needle` when its first line shows it. */
function at(cmd: Command, needle: string): SourceLocation {
  const loc = cmd.location;
  const i = loc.text?.indexOf(needle, (loc.column ?? 1) - 1) ?? -1;
  return i >= 0 ? { ...loc, column: i + 1 } : loc;
}

/** A `--from` value: a stage by name (any case) or index, or undefined for an image. */
function stageRef(from: string, names: Map<string, number>, stageCount: number): number | 'bad-index' | undefined {
  const byName = names.get(from.toLowerCase());
  if (byName !== undefined) return byName;
  if (!/^\d+$/.test(from)) return undefined;
  const index = Number(from);
  return index < stageCount ? index : 'bad-index';
}

function resolveStage(
  stage: Stage,
  stages: Stage[],
  names: StageNames,
  lex: ShellLex,
  globalEnv: ReadonlyMap<string, string>,
  errors: LadingError[],
  warnings: BuildWarning[],
): StageNode {
  const imageName = expand(lex, stage.from.image, globalEnv, stage.from, errors);
  if (imageName === '') {
    errors.push(
      new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `base name (${stage.from.image}) should not be blank`, {
        location: stage.from.location,
        hint: 'give the ARG it uses a default before the first FROM, or pass it with --build-arg',
      }),
    );
  }
  const earlier = names.before[stage.index]!;
  let base: StageBase;
  const named = earlier.get(imageName);
  if (imageName === 'scratch') base = { kind: 'scratch' };
  else if (named !== undefined) base = { kind: 'stage', index: named };
  else {
    base = { kind: 'image', ref: imageName };
    const lower = imageName.toLowerCase();
    if (imageName !== lower && earlier.has(lower)) {
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `FROM ${imageName}: stage names are lowercase in FROM, and an image name cannot have capitals`, {
          location: stage.from.location,
          hint: `write FROM ${lower} to build on stage ${earlier.get(lower)}`,
        }),
      );
    } else if (names.final.has(lower) && names.final.get(lower)! >= stage.index) {
      warnings.push({
        message: `FROM ${imageName} names an image, not the stage "${lower}" defined later; a stage can only be based on an earlier one`,
        location: stage.from.location,
      });
    }
  }

  const node: StageNode = { stage, base, dependsOn: base.kind === 'stage' ? [base.index] : [], imageInputs: [] };
  if (stage.from.platform !== undefined) {
    const platform = expand(lex, stage.from.platform, globalEnv, stage.from, errors);
    if (platform === '') {
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `empty platform value from expression ${stage.from.platform}`, {
          location: stage.from.location,
          hint: 'use a global ARG with a value, or an automatic one such as $BUILDPLATFORM',
        }),
      );
    } else if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/.test(platform)) {
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `failed to parse platform ${platform}`, {
          location: stage.from.location,
          hint: 'write a platform as OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/arm/v7',
        }),
      );
    } else node.platform = platform;
  }

  for (const cmd of stage.commands) {
    for (const from of stageInputs(cmd)) {
      const ref = stageRef(from, names.final, stages.length);
      if (typeof ref === 'number') {
        if (!node.dependsOn.includes(ref)) node.dependsOn.push(ref);
      } else if (ref === 'bad-index') {
        errors.push(
          new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid stage index ${from}: the Dockerfile has ${stages.length} stage${stages.length === 1 ? '' : 's'}`, {
            location: at(cmd, `from=${from}`),
            hint: 'stage indexes start at 0 and count FROM lines from the top',
          }),
        );
      } else {
        const suggestion = didYouMean(from, names.final.keys());
        if (suggestion && !/[/:@.]/.test(from)) {
          // A bare word this close to a stage name is almost certainly a typo, not an image.
          errors.push(new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `--from=${from} names no stage`, { location: at(cmd, `from=${from}`), hint: suggestion }));
        } else if (!node.imageInputs.includes(from)) node.imageInputs.push(from);
      }
    }
  }
  return node;
}

/** What a command reads besides the context: `COPY --from` and `RUN --mount=from=`. */
function stageInputs(cmd: Command): string[] {
  if ((cmd.kind === 'copy' || cmd.kind === 'add') && cmd.from !== undefined) return [cmd.from];
  if (cmd.kind !== 'run') return [];
  const out: string[] = [];
  for (const m of cmd.mounts) {
    const from = m.options.from;
    if (from === undefined || from === '' || (m.options.type ?? 'bind').toLowerCase() === 'tmpfs') continue;
    out.push(from);
  }
  return out;
}

/**
 * BuildKit builds stages in file order, so a stage can only read stages above it; naming a later
 * one fails with this message (unless the two form a cycle, reported before).
 */
function checkBackwardRefs(node: StageNode, nodes: StageNode[], byName: Map<string, number>, errors: LadingError[]): void {
  const self = node.stage;
  for (const cmd of self.commands) {
    for (const from of stageInputs(cmd)) {
      const ref = stageRef(from, byName, nodes.length);
      if (typeof ref !== 'number' || ref < self.index) continue;
      const other = nodes[ref]!.stage;
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `cannot copy from stage "${from}", it needs to be defined before current stage "${self.name ?? `stage-${self.index}`}"`, {
          location: at(cmd, `from=${from}`),
          hint: `move stage ${other.name ?? other.index} (line ${other.location.line}) above line ${self.location.line}`,
        }),
      );
    }
  }
}

function findTarget(target: string | undefined, stages: Stage[], byName: Map<string, number>, file: string): number {
  if (target === undefined || target === '') return stages.length - 1;
  const index = byName.get(target.toLowerCase());
  if (index === undefined) {
    const names = [...byName.keys()];
    throw new LadingError(ERROR_CODES.USAGE, `target stage "${target}" could not be found in ${file}`, {
      hint: didYouMean(target, names) ?? (names.length ? `the named stages are ${names.join(', ')}` : 'the Dockerfile names no stages (use FROM IMAGE AS NAME)'),
    });
  }
  return index;
}

/** A cycle anywhere in the file (BuildKit checks every stage, reachable or not). */
function findCycle(nodes: StageNode[], file: string): LadingError | undefined {
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number, path: number[]): LadingError | undefined => {
    const s = state.get(i);
    if (s === 'done') return undefined;
    if (s === 'visiting') {
      const loop = [...path.slice(path.indexOf(i)), i].map((n) => nodes[n]!.stage.name ?? `stage-${n}`);
      return new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `circular dependency detected on stage: ${loop[0]} (${loop.join(' → ')})`, {
        location: nodes[i]!.stage.location,
        hint: `break the cycle in ${file}: a stage cannot copy from or mount a stage that uses it`,
      });
    }
    state.set(i, 'visiting');
    for (const dep of nodes[i]!.dependsOn) {
      const err = visit(dep, [...path, i]);
      if (err) return err;
    }
    state.set(i, 'done');
    return undefined;
  };
  for (const node of nodes) {
    const err = visit(node.stage.index, []);
    if (err) return err;
  }
  return undefined;
}

/** Stages the target needs, dependencies first (the graph has no cycles by now). */
function dependencyOrder(target: number, nodes: StageNode[]): number[] {
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (i: number): void => {
    if (seen.has(i)) return;
    seen.add(i);
    for (const dep of [...nodes[i]!.dependsOn].sort((a, b) => a - b)) visit(dep);
    order.push(i);
  };
  visit(target);
  return order;
}

/** Group stages into waves: each wave depends only on earlier waves, so its stages run together. */
function parallelWaves(order: number[], nodes: StageNode[]): number[][] {
  const level = new Map<number, number>();
  for (const i of order) {
    const deps = nodes[i]!.dependsOn;
    level.set(i, deps.length === 0 ? 0 : Math.max(...deps.map((d) => level.get(d)! + 1)));
  }
  const waves: number[][] = [];
  for (const i of order) (waves[level.get(i)!] ??= []).push(i);
  return waves.map((w) => w.sort((a, b) => a - b));
}

/** Throw the first error with the others as `related`, in file order. */
export function throwAll(errors: LadingError[]): void {
  if (errors.length === 0) return;
  const sorted = [...errors].sort((a, b) => (a.location?.line ?? 0) - (b.location?.line ?? 0));
  const [first, ...rest] = sorted;
  throw new LadingError(first!.code, first!.message, {
    location: first!.location,
    hint: first!.hint,
    related: [...first!.related, ...rest],
    cause: first!.cause,
    details: first!.details,
  });
}
