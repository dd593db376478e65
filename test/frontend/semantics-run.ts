/**
 * Drives a Dockerfile through the front end the way the engine does, without files or network:
 * stages in graph order, each dispatcher given its base's config (a stage's result or an image
 * config from the test), ONBUILD triggers of the base first.
 */
import type { ConfigStep, CopyStep, RunStep, Step, WorkdirStep } from '../../src/frontend/dispatch.ts';
import { loadDockerfile, type Frontend } from '../../src/frontend/index.ts';
import type { ContainerConfig, Platform } from '../../src/image/types.ts';

export const BUILD_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
export const TARGET_PLATFORM: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

export interface StageRun {
  config: ContainerConfig;
  author?: string;
  steps: Step[];
}

export interface DockerfileRun {
  frontend: Frontend;
  stages: Map<number, StageRun>;
  target: StageRun;
}

export interface RunOptions {
  buildArgs?: Record<string, string>;
  target?: string;
  images?: Record<string, ContainerConfig>;
}

export function runDockerfile(text: string, options: RunOptions = {}): DockerfileRun {
  const frontend = loadDockerfile(text, {
    file: 'Dockerfile',
    buildArgs: new Map(Object.entries(options.buildArgs ?? {})),
    ...(options.target !== undefined ? { target: options.target } : {}),
    buildPlatform: BUILD_PLATFORM,
    targetPlatform: TARGET_PLATFORM,
  });
  const stages = new Map<number, StageRun>();
  for (const index of frontend.graph.order) {
    const node = frontend.graph.stages[index]!;
    const base = node.base;
    const baseConfig =
      base.kind === 'stage' ? stages.get(base.index)!.config : base.kind === 'image' ? options.images?.[base.ref] : undefined;
    const copy = baseConfig === undefined ? undefined : (JSON.parse(JSON.stringify(baseConfig)) as ContainerConfig);
    const dispatcher = frontend.dispatcher(index, copy);
    const commands = [...frontend.triggers(copy?.OnBuild, node.stage.from.location), ...node.stage.commands];
    const steps: Step[] = [];
    for (const cmd of commands) {
      const step = dispatcher.dispatch(cmd);
      if (step) steps.push(step);
    }
    const run: StageRun = { config: dispatcher.config, steps };
    if (dispatcher.author !== undefined) run.author = dispatcher.author;
    stages.set(index, run);
  }
  return { frontend, stages, target: stages.get(frontend.graph.target)! };
}

export function runSteps(stage: StageRun): RunStep[] {
  return stage.steps.filter((s): s is RunStep => s.kind === 'run');
}

export function copySteps(stage: StageRun): CopyStep[] {
  return stage.steps.filter((s): s is CopyStep => s.kind === 'copy' || s.kind === 'add');
}

export function configSteps(stage: StageRun): (ConfigStep | WorkdirStep)[] {
  return stage.steps.filter((s): s is ConfigStep | WorkdirStep => s.kind === 'config' || s.kind === 'workdir');
}

/** NAME → value of an env list (`NAME=value` strings). */
export function envMap(env: string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return out;
}
