/**
 * What the engine needs from run/ to execute RUN steps: a session per stage over a root file
 * system. An interface, so a build without RUN never starts a sandbox and tests can count calls.
 */
import type { LayerBlob, RunMount, RunResult, RunSpec } from '../run/index.ts';

export type { LayerBlob, RunMount };

/** A root file system kept for one stage while its RUN steps execute. */
export interface RunSession {
  /** How steps run, for people: e.g. `bwrap (overlay snapshots)`. */
  readonly description: string;
  addLayer(layer: LayerBlob): Promise<unknown>;
  run(spec: RunSpec): Promise<RunResult>;
  dispose(): Promise<void>;
}

export interface RunExecutor {
  session(): Promise<RunSession>;
}
