/**
 * Typed commands → BuildGraph: stages and their names, global ARGs, what each stage starts from
 * and reads, the target, and which stages the target needs (only those are looked at further).
 */
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { ArgCommand, BuildGraph, BuildWarning, Command, FromCommand, Stage, StageBase, StageNode } from '../graph/types.ts';
import { PLATFORM_ARG_NAMES, PROXY_ARGS } from './args.ts';
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

  const globalArgs = new Map<string, string | undefined>();
  const globalEnv = new Map<string, string>(options.platformArgs);
  for (const cmd of globalArgCommands) {
    for (const arg of cmd.args) {
      const value = options.buildArgs.get(arg.key) ?? (arg.value === undefined ? undefined : expand(lex, arg.value, globalEnv, cmd, errors));
      globalArgs.set(arg.key, value);
      if (value !== undefined) globalEnv.set(arg.key, value);
      else globalEnv.delete(arg.key);
    }
  }

  const byName = new Map<string, number>();
  for (const stage of stages) {
    if (stage.name === undefined) continue;
    if (byName.has(stage.name)) {
      errors.push(
        new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `duplicate stage name "${stage.name}"`, {
          location: stage.location,
          hint: `stage ${byName.get(stage.name)} already uses this name; give each stage its own`,
        }),
      );
    } else byName.set(stage.name, stage.index);
  }

  const nodes: StageNode[] = stages.map((stage) => resolveStage(stage, stages, byName, lex, globalEnv, options, errors));
  if (stages.length === 0 && errors.length === 0) {
    errors.push(
      new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'the Dockerfile has no FROM instruction', {
        location: { file: options.file, line: 1 },
        hint: 'start the build with FROM IMAGE (or FROM scratch)',
      }),
    );
  }
  throwAll(errors);

  const target = findTarget(options.target, stages, byName, options.file);
  const order = dependencyOrder(target, nodes, options.file);
  const waves = parallelWaves(order, nodes);

  const declared = new Set<string>(globalArgs.keys());
  for (const index of order) {
    for (const cmd of nodes[index]!.stage.commands) if (cmd.kind === 'arg') for (const a of cmd.args) declared.add(a.key);
  }
  const unused = [...options.buildArgs.keys()].filter(
    (k) => !declared.has(k) && !PROXY_ARGS.has(k) && !(PLATFORM_ARG_NAMES as readonly string[]).includes(k),
  );
  if (unused.length > 0) {
    warnings.push({ message: `build argument${unused.length > 1 ? 's' : ''} ${unused.sort().join(', ')} ${unused.length > 1 ? 'were' : 'was'} not consumed by any ARG of the stages built` });
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

function expand(lex: ShellLex, word: string, env: ReadonlyMap<string, string>, cmd: Command | FromCommand, errors: LadingError[]): string {
  try {
    return lex.processWord(word, env).value;
  } catch (err) {
    if (err instanceof LadingError) {
      errors.push(new LadingError(err.code, err.message, { location: cmd.location, hint: err.hint, cause: err }));
      return word;
    }
    throw err;
  }
}

/** A stage reference (`--from`, FROM): a stage by name or index, or undefined for an image. */
function stageRef(name: string, byName: Map<string, number>, stageCount: number): number | undefined {
  const lower = name.toLowerCase();
  if (byName.has(lower)) return byName.get(lower);
  if (/^\d+$/.test(name)) {
    const i = Number(name);
    return i < stageCount ? i : undefined;
  }
  return undefined;
}

function resolveStage(
  stage: Stage,
  stages: Stage[],
  byName: Map<string, number>,
  lex: ShellLex,
  globalEnv: ReadonlyMap<string, string>,
  options: GraphOptions,
  errors: LadingError[],
): StageNode {
  const imageName = expand(lex, stage.from.image, globalEnv, stage.from, errors);
  if (imageName === '') {
    errors.push(
      new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `FROM ${stage.from.image} expands to an empty image name`, {
        location: stage.from.location,
        hint: 'give the ARG it uses a default or pass it with --build-arg',
      }),
    );
  }
  let base: StageBase;
  const named = byName.get(imageName.toLowerCase());
  if (imageName.toLowerCase() === 'scratch') base = { kind: 'scratch' };
  else if (named !== undefined) {
    if (named === stage.index) {
      errors.push(new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `stage "${imageName}" uses itself as its base`, { location: stage.from.location }));
    }
    base = { kind: 'stage', index: named };
  } else base = { kind: 'image', ref: imageName };

  const node: StageNode = { stage, base, dependsOn: base.kind === 'stage' ? [base.index] : [], imageInputs: [] };
  if (stage.from.platform !== undefined) node.platform = expand(lex, stage.from.platform, globalEnv, stage.from, errors);

  // `--from` may use the stage's own ARGs; track their values the way dispatch will.
  const env = new Map<string, string>();
  for (const cmd of stage.commands) {
    if (cmd.kind === 'arg') {
      for (const a of cmd.args) {
        const value =
          options.buildArgs.get(a.key) ??
          (a.value !== undefined ? expand(lex, a.value, env, cmd, errors) : globalEnv.get(a.key) ?? options.platformArgs.get(a.key));
        if (value !== undefined) env.set(a.key, value);
      }
      continue;
    }
    const froms: string[] = [];
    if ((cmd.kind === 'copy' || cmd.kind === 'add') && cmd.from !== undefined) froms.push(cmd.from);
    if (cmd.kind === 'run') for (const m of cmd.mounts) if (m.options.from !== undefined) froms.push(m.options.from);
    for (const raw of froms) {
      const from = expand(lex, raw, env, cmd, errors);
      const ref = stageRef(from, byName, stages.length);
      if (ref !== undefined) {
        if (!node.dependsOn.includes(ref)) node.dependsOn.push(ref);
      } else if (/^\d+$/.test(from)) {
        errors.push(
          new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `--from=${from} names no stage (the Dockerfile has ${stages.length})`, {
            location: cmd.location,
            hint: 'stage indexes start at 0',
          }),
        );
      } else {
        const suggestion = didYouMean(from, byName.keys());
        if (suggestion && !from.includes('/') && !from.includes(':')) {
          // A bare word that is nearly a stage name is almost certainly a typo, not an image.
          errors.push(
            new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `--from=${from} names no stage`, { location: cmd.location, hint: suggestion }),
          );
        } else if (!node.imageInputs.includes(from)) node.imageInputs.push(from);
      }
    }
  }
  return node;
}

function findTarget(target: string | undefined, stages: Stage[], byName: Map<string, number>, file: string): number {
  if (target === undefined) return stages.length - 1;
  const index = byName.get(target.toLowerCase());
  if (index === undefined) {
    const names = [...byName.keys()];
    throw new LadingError(ERROR_CODES.USAGE, `target stage "${target}" could not be found in ${file}`, {
      hint: didYouMean(target, names) ?? (names.length ? `the named stages are ${names.join(', ')}` : 'the Dockerfile names no stages (use FROM IMAGE AS NAME)'),
    });
  }
  return index;
}

/** Stages the target needs, dependencies first; a cycle is an error naming its stages. */
function dependencyOrder(target: number, nodes: StageNode[], file: string): number[] {
  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number, path: number[]): void => {
    const s = state.get(i);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(i)), i].map((n) => nodes[n]!.stage.name ?? String(n));
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `the stages depend on each other in a cycle: ${cycle.join(' → ')}`, {
        location: nodes[i]!.stage.location,
        hint: `break the cycle in ${file}: a stage can only use stages that do not use it`,
      });
    }
    state.set(i, 'visiting');
    for (const dep of nodes[i]!.dependsOn) visit(dep, [...path, i]);
    state.set(i, 'done');
    order.push(i);
  };
  visit(target, []);
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
  for (const i of order) {
    const l = level.get(i)!;
    (waves[l] ??= []).push(i);
  }
  return waves;
}

function throwAll(errors: LadingError[]): void {
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  throw new LadingError(first!.code, first!.message, {
    location: first!.location,
    hint: first!.hint,
    related: [...first!.related, ...rest],
    cause: first!.cause,
  });
}

export { throwAll };
