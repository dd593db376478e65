/** Progress events of a build, as the CLI renders them and library users receive them. */
import type { RegistryEvent } from '../registry/events.ts';

export interface StepRef {
  /** Stage index in the Dockerfile and its name, if any. */
  stage: number;
  /** The stage's `AS` name. */
  stageName?: string;
  /** 1-based position of the step in its stage. */
  step: number;
  /** Number of steps in the stage. */
  total: number;
  /** The instruction as expanded, e.g. `COPY app.js /app/`. */
  text: string;
  /** Line of the instruction in the Dockerfile. */
  line: number;
  /** In a multi-platform build, which platform's build this step belongs to. */
  platform?: string;
}

export type BuildEvent =
  | { type: 'build-start'; stages: number[]; platform: string }
  | { type: 'stage-start'; stage: number; stageName?: string; base: string }
  | { type: 'base-resolved'; stage: number; ref: string; digest: string }
  | { type: 'step-start'; ref: StepRef }
  | { type: 'step-cached'; ref: StepRef; layer?: string }
  | { type: 'step-done'; ref: StepRef; ms: number; layer?: string; layerBytes?: number; emptyLayer: boolean }
  | { type: 'step-miss-reason'; ref: StepRef; reason: string }
  | { type: 'step-output'; ref: StepRef; stream: 'stdout' | 'stderr'; text: string }
  /**
   * A layer being written: `bytes` uncompressed bytes (hashed and compressed) since the last
   * event; `total` is the layer's file bytes (tar headers aside); `compressed` the compressed
   * bytes stored so far; `bytesPerSecond` the uncompressed rate since the layer started.
   */
  | { type: 'layer-progress'; ref: StepRef; bytes: number; total?: number; compressed: number; bytesPerSecond: number }
  | { type: 'warning'; message: string; file?: string; line?: number }
  /** A stage started a sandbox for its RUN steps (only when a RUN misses the cache). */
  | { type: 'sandbox'; stage: number; description: string }
  /** Pulls, pushes, mounts and retries of the registry client. */
  | { type: 'registry'; event: RegistryEvent }
  /** An output was written (an OCI folder, a tarball, a pushed reference). */
  | { type: 'output'; kind: 'oci' | 'docker' | 'registry' | 'local'; dest: string; digest: string }
  | { type: 'build-done'; digest: string; ms: number; layersMade: number; layersCached: number };

export type BuildEventListener = (event: BuildEvent) => void;
