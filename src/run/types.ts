/** What the engine hands to run/ and what it gets back. Plain data: it also crosses to the worker. */
import type { Readable } from 'node:stream';
import type { LayerDescriptor } from '../image/types.ts';
import type { LayerEntry } from '../layer/entry.ts';

/** How RUN steps are isolated. */
export type SandboxKind = 'bwrap' | 'proot' | 'chroot';

/** How a step's changes are found: the upper directory of an overlay, or a walk and compare. */
export type SnapshotKind = 'overlay' | 'diff';

/** A layer to add to a root filesystem: its descriptor and a way to read its (compressed) blob. */
export interface LayerBlob {
  descriptor: LayerDescriptor;
  open(): Promise<Readable>;
}

/** `RUN --mount=type=cache`: a folder kept between builds, keyed by `id` (default: the target). */
export interface CacheMount {
  type: 'cache';
  target: string;
  /** The engine's folder holding every cache mount (it persists across builds). */
  cacheRoot: string;
  id?: string;
  /** shared (default): used at once by every step; private: a fresh folder when busy; locked: wait for it. */
  sharing?: 'shared' | 'private' | 'locked';
  readonly?: boolean;
  /** Mode, owner and group of the folder when it is created (default 0755, 0, 0). */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** `RUN --mount=type=bind`: part of another stage's root or of the build context. */
export interface BindMount {
  type: 'bind';
  target: string;
  /** A host folder given by the engine: another stage's `Rootfs.path()` or the context. */
  from: string;
  /** A path inside `from` (symlinks resolved inside it); default its top. */
  source?: string;
  /** Allow writes; they are discarded after the step, as in BuildKit. */
  rw?: boolean;
}

/** `RUN --mount=type=secret`: a file only this step sees; never in a layer. */
export interface SecretMount {
  type: 'secret';
  id: string;
  /** The host file holding the secret, given by the engine. */
  file: string;
  /** Default `/run/secrets/<id>`. */
  target?: string;
  /** Default 0400, 0, 0. */
  mode?: number;
  uid?: number;
  gid?: number;
}

/** `RUN --mount=type=tmpfs`: an empty in-memory folder. */
export interface TmpfsMount {
  type: 'tmpfs';
  target: string;
  /** Bytes; default unlimited (half the RAM, the kernel's default). */
  size?: number;
}

export type RunMount = CacheMount | BindMount | SecretMount | TmpfsMount;

export interface RunSpec {
  /** The final argv (the engine has applied the shell for the shell form). */
  argv: string[];
  /** `KEY=value`: the image's Env and the build's ARGs. Nothing here is kept after the step. */
  env: string[];
  /** Absolute; created when missing, as Docker does. */
  workdir: string;
  /** `name`, `uid`, `name:group`, `uid:gid`; default root. */
  user?: string;
  network?: 'default' | 'none' | 'host';
  mounts?: RunMount[];
  signal?: AbortSignal;
  onOutput?(chunk: Buffer, stream: 'stdout' | 'stderr'): void;
}

export interface RunResult {
  /** What the step changed, ready for writeLayer. Sources stay readable until the next addLayer/run/dispose. */
  entries: LayerEntry[];
  sandbox: SandboxKind;
  snapshot: SnapshotKind;
  /** Things a user may want to know (approximations, skipped items); never secrets or ARG values. */
  notes: string[];
  /** Milliseconds spent finding the changes (after the command exited). */
  snapshotMs: number;
  /** Milliseconds the command ran. */
  commandMs: number;
}

export interface AddLayerResult {
  /** Entries applied. */
  entries: number;
  /** Skipped device nodes, ownership that could not be set, and the like. */
  notes: string[];
}

export interface RootfsOptions {
  sandbox?: SandboxKind;
  /** Force a snapshot method (tests compare the two); default overlay where the kernel allows. */
  snapshot?: SnapshotKind;
  /** PATH used to find bwrap, proot, unshare... (default: process.env.PATH). */
  searchPath?: string;
}
