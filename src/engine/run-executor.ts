/**
 * What the engine needs from run/ to execute RUN steps. Kept as an interface so the engine does
 * not care which sandbox runs the step, and so a build without RUN never touches one.
 */
import type { Readable } from 'node:stream';
import type { RunStep } from '../frontend/dispatch.ts';
import type { LayerDescriptor } from '../image/types.ts';
import type { LayerEntry } from '../layer/entry.ts';

export interface LayerBlobRef {
  descriptor: LayerDescriptor;
  open(): Promise<Readable>;
}

/** A mount with its host side resolved by the engine. */
export type ResolvedMount =
  | { type: 'cache'; target: string; hostDir: string; sharing: 'shared' | 'private' | 'locked'; readonly: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'bind'; target: string; hostPath: string; readonly: boolean }
  | { type: 'secret'; target: string; hostFile?: string; env?: string; required: boolean; mode?: number; uid?: number; gid?: number }
  | { type: 'tmpfs'; target: string; size?: string }
  | { type: 'file'; target: string; content: string; mode: number };

export interface RunOutcome {
  /** What the step changed, as layer entries; their sources stay readable until the next call. */
  entries: LayerEntry[];
  sandbox: string;
}

/** A root file system kept for one stage while its RUN steps execute. */
export interface RunSession {
  addLayer(layer: LayerBlobRef): Promise<void>;
  run(step: RunStep, mounts: ResolvedMount[], options: { signal?: AbortSignal; onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void }): Promise<RunOutcome>;
  /** A folder showing the current root file system (for COPY --from and bind mounts). */
  path(): Promise<string>;
  dispose(): Promise<void>;
}

export interface RunExecutor {
  session(): Promise<RunSession>;
}
