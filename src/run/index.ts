/**
 * RUN without a daemon: a stage's root filesystem built from its layers, steps run in a sandbox,
 * and what each step changed as layer entries. The work happens in a worker process living in
 * the namespaces the sandbox needs (see worker.ts); this class is the engine's handle on it.
 *
 *   const root = await Rootfs.create(workDir);          // sandbox chosen by detectSandbox
 *   for (const layer of baseLayers) await root.addLayer(layer);
 *   const { entries } = await root.run({ argv, env, workdir: '/' });
 *   const desc = await writeLayer(entries, store);       // before the next addLayer/run/dispose
 *   await root.dispose();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, LadingError } from '../errors.ts';
import type { LayerEntry } from '../layer/entry.ts';
import { chooseSandbox, namespacePrefix, type IdMode, type SandboxChoice } from './detect.ts';
import { exec } from './host.ts';
import { Peer, type Endpoint } from './ipc.ts';
import type { AddLayerResult, LayerBlob, RootfsOptions, RunResult, RunSpec, SandboxKind, SnapshotKind } from './types.ts';

export type {
  AddLayerResult,
  BindMount,
  CacheMount,
  LayerBlob,
  RootfsOptions,
  RunMount,
  RunResult,
  RunSpec,
  SandboxKind,
  SecretMount,
  SnapshotKind,
  TmpfsMount,
} from './types.ts';
export { detectSandbox } from './detect.ts';
export { materializeRootfs } from './materialize.ts';

export class Rootfs {
  /** The sandbox running this root's steps. */
  readonly sandbox: SandboxKind;
  /** How steps' changes are found: 'overlay' (cost follows what a step wrote) or 'diff'. */
  readonly snapshot: SnapshotKind;
  /** Why this sandbox was chosen (and why others were not). */
  readonly reasons: string[];
  private readonly worker: WorkerProcess;
  private readonly dir: string;
  private readonly idMode: IdMode;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(worker: WorkerProcess, choice: SandboxChoice, snapshot: SnapshotKind, dir: string) {
    this.worker = worker;
    this.sandbox = choice.kind;
    this.snapshot = snapshot;
    this.reasons = choice.reasons;
    this.dir = dir;
    this.idMode = choice.idMode;
  }

  /** An empty root in a new folder under `workRoot`, with its worker started. */
  static async create(workRoot: string, options: RootfsOptions = {}): Promise<Rootfs> {
    const choice = await chooseSandbox(options.sandbox, options.searchPath ?? process.env.PATH ?? '');
    await fs.mkdir(workRoot, { recursive: true });
    const dir = await fs.mkdtemp(path.join(path.resolve(workRoot), 'rootfs-'));
    let worker: WorkerProcess | undefined;
    try {
      worker = await WorkerProcess.start(choice);
      const info = (await worker.peer.call('init', [
        { dir, kind: choice.kind, idMode: choice.idMode, tools: choice.tools, snapshot: options.snapshot },
      ])) as { snapshot: SnapshotKind };
      return new Rootfs(worker, choice, info.snapshot, dir);
    } catch (err) {
      await worker?.stop();
      await removeTree(dir, choice);
      throw err;
    }
  }

  /** Apply a layer (base layers and COPY/ADD layers, in order). */
  addLayer(layer: LayerBlob): Promise<AddLayerResult> {
    return this.serial(async () => {
      const input = await layer.open();
      const id = this.worker.peer.newStreamId();
      const applied = this.worker.peer.call('addLayer', [id]);
      const sent = this.worker.peer.sendStream(id, input);
      const [result] = await Promise.all([applied, sent]);
      return result as AddLayerResult;
    });
  }

  /** Run one step; its changes come back as entries whose sources stay readable until the next call. */
  run(spec: RunSpec): Promise<RunResult> {
    return this.serial(async () => {
      const { signal, onOutput, ...request } = spec;
      if (signal?.aborted) throw new LadingError(ERROR_CODES.INTERRUPTED, 'the build was cancelled', { cause: signal.reason });
      const result = (await this.worker.peer.call('run', [request], {
        signal,
        onEvent: (name, payload) => {
          if (name !== 'output' || !onOutput) return;
          const p = payload as { chunk: Uint8Array; stream: 'stdout' | 'stderr' };
          onOutput(Buffer.from(p.chunk.buffer, p.chunk.byteOffset, p.chunk.byteLength), p.stream);
        },
      })) as RunResult;
      result.entries = result.entries.map((e) => this.readable(e));
      return result;
    });
  }

  /** A folder showing the current root (for bind mounts and COPY --from of this stage). */
  path(): Promise<string> {
    return this.serial(async () => (await this.worker.peer.call('path', [])) as string);
  }

  /** Remove every work file and stop the worker. Safe to call more than once. */
  dispose(): Promise<void> {
    if (this.disposed) return this.queue.then(() => undefined);
    return this.serial(async () => {
      this.disposed = true;
      try {
        await this.worker.peer.call('dispose', []);
      } catch {
        // the worker is gone; remove what it left below
      } finally {
        await this.worker.stop();
        await removeTree(this.dir, { idMode: this.idMode, tools: this.worker.choice.tools });
      }
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(() => {
      if (this.disposed) throw new LadingError(ERROR_CODES.INTERNAL, 'this Rootfs was disposed');
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * With subordinate ids, files a step created may belong to an id this process cannot read as:
   * read directly when possible, through the worker otherwise.
   */
  private readable(entry: LayerEntry): LayerEntry {
    if (this.idMode !== 'userns-full' || entry.source?.kind !== 'path') return entry;
    const file = entry.source.path;
    return { ...entry, source: { kind: 'stream', open: () => this.openFile(file) } };
  }

  private async openFile(file: string): Promise<Readable> {
    try {
      const handle = await fs.open(file, 'r');
      return handle.createReadStream();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
    }
    const id = this.worker.peer.newStreamId();
    const stream = this.worker.peer.receiveStream(id);
    await this.worker.peer.call('read', [file, id]);
    return stream;
  }
}

/** The worker child process: started inside the sandbox's namespaces, talked to through a Peer. */
class WorkerProcess {
  readonly peer: Peer;
  readonly choice: SandboxChoice;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  private constructor(child: ChildProcess, choice: SandboxChoice) {
    this.child = child;
    this.choice = choice;
    // ChildProcess is an IPC endpoint once started with an 'ipc' slot; Node's types say so loosely.
    this.peer = new Peer(child as unknown as Endpoint, 1);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.peer.close(
          new LadingError(ERROR_CODES.SANDBOX, `the rootfs worker stopped (${signal ?? `exit code ${code}`})${stderr.trim() ? `: ${stderr.trim()}` : ''}`, {
            hint: 'if this repeats, run with the sandbox setting forced to another kind and report it',
          }),
        );
        resolve();
      });
    });
    child.once('error', (err) => this.peer.close(new LadingError(ERROR_CODES.SANDBOX, `cannot start the rootfs worker: ${err.message}`)));
  }

  static async start(choice: SandboxChoice): Promise<WorkerProcess> {
    const self = fileURLToPath(import.meta.url);
    const ext = path.extname(self);
    const script = path.join(path.dirname(self), `worker${ext}`);
    const argv = [...namespacePrefix(choice.idMode, choice.tools), process.execPath, ...loaderArgs(ext), script];
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: process.env,
    });
    return new WorkerProcess(child, choice);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Node flags that load TypeScript (tsx), so a .ts worker starts the way this process did. */
function loaderArgs(ext: string): string[] {
  if (ext !== '.ts') return [];
  const keep: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) keep.push(a);
    else if (['--import', '--require', '-r', '--loader', '--experimental-loader'].includes(a) && i + 1 < argv.length) keep.push(a, argv[++i]!);
  }
  return keep.length > 0 ? keep : ['--import', 'tsx'];
}

/** Remove a rootfs folder, entering the user namespace when files belong to subordinate ids. */
async function removeTree(dir: string, choice: Pick<SandboxChoice, 'idMode' | 'tools'>): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
    return;
  } catch (err) {
    if (choice.idMode !== 'userns-full' || !choice.tools.unshare) throw err;
  }
  const r = await exec(choice.tools.unshare!, ['--user', '--map-root-user', '--map-auto', '--', 'rm', '-rf', '--', dir]);
  if (r.code !== 0) throw new LadingError(ERROR_CODES.INTERNAL, `cannot remove ${dir}: ${r.stderr.trim()}`);
}
