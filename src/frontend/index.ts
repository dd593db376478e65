/**
 * The front end's public face: Dockerfile text and build options in, BuildGraph out; plus the
 * dispatcher the engine drives stage by stage and the parser for ONBUILD triggers.
 */
import { ERROR_CODES, LadingError, type SourceLocation } from '../errors.ts';
import type { BuildGraph, Command } from '../graph/types.ts';
import type { Platform } from '../image/types.ts';
import { platformArgs } from './args.ts';
import { StageDispatcher, type DispatchOptions } from './dispatch.ts';
import { convertNodes } from './instructions.ts';
import { parseDockerfile } from './parser.ts';
import { buildGraph, throwAll } from './stages.ts';

export { StageDispatcher } from './dispatch.ts';
export type { Step, ConfigStep, CopyStep, RunStep, WorkdirStep, RunMountStep, StageEnvironment } from './dispatch.ts';

export interface FrontendOptions {
  /** Path shown in messages (`Dockerfile:3:1`). */
  file: string;
  buildArgs?: ReadonlyMap<string, string>;
  target?: string;
  buildPlatform: Platform;
  targetPlatform: Platform;
  /** The network of RUN steps that name none (`--network` of the build; default `default`). */
  network?: 'default' | 'none' | 'host';
}

export interface Frontend {
  graph: BuildGraph;
  /**
   * A dispatcher for one stage, starting from its base image's config. When the stage is based on
   * another stage, that stage must have been dispatched first: its ARGs and environment carry over.
   * `_stagePlatform` is accepted for callers that pass the stage's own platform and ignored: the
   * automatic ARGs describe the build (TARGETARCH stays the target under `FROM --platform=$BUILDPLATFORM`).
   */
  dispatcher(stage: number, baseConfig: DispatchOptions['baseConfig'], _stagePlatform?: Platform): StageDispatcher;
  /** The commands of a base image's ONBUILD triggers, to run before the stage's own. */
  triggers(onbuild: string[] | null | undefined, location: SourceLocation): Command[];
}

export function loadDockerfile(text: string, options: FrontendOptions): Frontend {
  const parsed = parseDockerfile(text, options.file);
  const lines = text.split('\n');
  const { commands, errors } = convertNodes(parsed, lines);
  throwAll(errors);
  const buildArgs = options.buildArgs ?? new Map<string, string>();
  const pArgs = platformArgs(options.buildPlatform, options.targetPlatform);
  for (const [k, v] of buildArgs) if (pArgs.has(k)) pArgs.set(k, v);
  const graph = buildGraph(commands, {
    file: options.file,
    escapeToken: parsed.directives.escape,
    buildArgs,
    platformArgs: pArgs,
    target: options.target,
  });
  for (const w of parsed.warnings) graph.warnings.push({ message: w.message, location: { file: options.file, line: w.line } });

  const dispatched = new Map<number, StageDispatcher>();
  return {
    graph,
    dispatcher: (stage, baseConfig) => {
      const base = graph.stages[stage]?.base;
      const from = base?.kind === 'stage' ? dispatched.get(base.index) : undefined;
      if (base?.kind === 'stage' && !from) throw new Error(`stage ${stage} is dispatched before its base stage ${base.index}`);
      const dispatcher = new StageDispatcher({
        escapeToken: parsed.directives.escape,
        baseConfig,
        buildArgs,
        globalArgs: graph.globalArgs,
        platformArgs: pArgs,
        ...(options.network ? { network: options.network } : {}),
        ...(from ? { inherit: from.environment() } : {}),
      });
      dispatched.set(stage, dispatcher);
      return dispatcher;
    },
    triggers: (onbuild, location) => {
      if (!onbuild || onbuild.length === 0) return [];
      const out: Command[] = [];
      for (const trigger of onbuild) {
        const triggerParsed = parseDockerfile(`${trigger}\n`, `${location.file} (ONBUILD of the base image)`);
        if (triggerParsed.nodes.length !== 1) {
          throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `the base image's ONBUILD trigger "${trigger}" should be a single instruction`, { location });
        }
        const converted = convertNodes(triggerParsed, `${trigger}\n`.split('\n'));
        throwAll(converted.errors);
        for (const cmd of converted.commands) {
          if (cmd.kind === 'from') {
            throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, 'the base image has an ONBUILD FROM trigger, which is not allowed', { location });
          }
          out.push({ ...cmd, location: { ...location, text: `ONBUILD ${trigger.split('\n')[0]}` } });
        }
      }
      return out;
    },
  };
}
