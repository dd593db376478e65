/**
 * The build engine: walks a BuildGraph stage by stage (stages that do not read each other run at
 * the same time) and step by step. Every step that touches the file system has a content key; a
 * hit reuses the layer it made before, a miss makes it. Steps that only change the config make no
 * layer and do not move the key chain, so editing a LABEL never rebuilds a layer.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ERROR_CODES, LadingError, throwIfAborted, type SourceLocation } from '../errors.ts';
import type { BuildContext } from '../context/context.ts';
import type { CopyStep, RunStep, Step, WorkdirStep } from '../frontend/dispatch.ts';
import { loadDockerfile, type Frontend } from '../frontend/index.ts';
import type { Command, StageBase, StageNode } from '../graph/types.ts';
import type { BlobSource, Image } from '../image/image.ts';
import { assembleImage, layersOf } from '../image/mutate.ts';
import { sha256 } from '../image/digest.ts';
import { parsePlatform, platformToString } from '../image/platform.ts';
import type { ContainerConfig, HistoryEntry, ImageConfig, LayerDescriptor, Platform } from '../image/types.ts';
import type { LayerEntry } from '../layer/entry.ts';
import { FsIndex, type IndexedLayer } from '../layer/fs-index.ts';
import { writeLayer } from '../layer/write-layer.ts';
import type { BlobStore } from '../store/blob-store.ts';
import { parentMarker, type CacheIndex } from '../store/cache-index.ts';
import { layeredBlobSource } from './blobs.ts';
import { describeSources, planCopy, type CopyMatch } from './copy-plan.ts';
import { contextMatches, heredocMatches, isHeredocSource, mostlyCold } from './copy-sources.ts';
import { downloadUrl, isArchive, isUrl, unpackArchive } from './add-sources.ts';
import { loadContents, stageMatches, type FileSystemSource } from './stage-sources.ts';
import type { BuildEvent, StepRef } from './events.ts';
import { rate } from '../registry/events.ts';
import { FsIndexer, indexedLayerOf } from './fs-indexer.ts';
import { baseKey, stepKey, type LayerSettings } from './keys.ts';
import { ExplainStore, explainMiss, inputsOf, slotId, type SlotState } from './explain.ts';
import { checkEmulation } from './emulation.ts';
import type { RunExecutor, RunMount, RunSession } from './run-executor.ts';
import { materializeRootfs } from '../run/materialize.ts';
import type { CacheExportEntry, RemoteCache } from './remote-cache.ts';
import { resolveIds, type Ids } from './users.ts';

export interface EngineOptions {
  dockerfile: { text: string; path: string };
  context: BuildContext;
  store: BlobStore;
  cache: CacheIndex;
  buildArgs?: ReadonlyMap<string, string>;
  target?: string;
  platform: Platform;
  buildPlatform: Platform;
  /** Find an image (a base, or the source of `COPY --from`) for a platform. */
  resolveImage: (ref: string, platform: Platform) => Promise<Image>;
  /** Executes RUN steps; without one, RUN is an error naming the step. */
  runner?: RunExecutor;
  /** `RUN --mount=type=secret` sources: secret id → a file holding it. Never part of a key or a layer. */
  secrets?: ReadonlyMap<string, string>;
  /**
   * Copy cold context files in one pass: hash them while writing the layer and compute the step's
   * key afterwards, instead of reading everything twice. Off where the key is needed first (a
   * shared cache to ask, several platforms sharing layers by content).
   */
  singlePass?: boolean;
  /** Where binfmt_misc handlers are listed (tests point it elsewhere). */
  binfmtDir?: string;
  /** A shared cache (a registry) asked for steps the local cache does not have. */
  remoteCache?: RemoteCache;
  /**
   * Layers being written, by content key; share one map between the builds of several platforms
   * so that a layer they all make is compressed once.
   */
  layerWrites?: Map<string, Promise<LayerDescriptor>>;
  layer: LayerSettings;
  format?: 'oci' | 'docker';
  noCache?: boolean;
  /** Stages (by name or index) whose steps always run. */
  noCacheFilter?: string[];
  /** Say, for every step that misses the cache, what changed since it last ran. */
  explain?: boolean;
  /** The network of RUN steps that name none. */
  network?: 'default' | 'none' | 'host';
  signal?: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
}

export interface StepReport {
  /** Index of the stage in the Dockerfile. */
  stage: number;
  /** The instruction as expanded, e.g. `COPY app.js /app/`. */
  text: string;
  /** True when the step was not run: its layer came from the local or the shared cache. */
  cached: boolean;
  /** Digest of the layer the step made or reused (none for a step that changed no file). */
  layer?: string;
  /** Time the step took, in milliseconds. */
  ms: number;
  /** With `explain`: why the step missed the cache. */
  missReason?: string;
  /** In a multi-platform build, the platform this step was built for. */
  platform?: string;
  /** The step ran, but a layer with exactly its content existed already and was reused. */
  reusedByContent?: boolean;
}

export interface EngineResult {
  image: Image;
  layers: LayerDescriptor[];
  steps: StepReport[];
  warnings: string[];
  /** Base images used (for annotations and provenance). */
  bases: { ref: string; digest: string }[];
  /** Every file-system step's key and layer, for --cache-to. */
  cacheEntries: CacheExportEntry[];
  /** Reads any layer the build used or made (store, bases, remote cache). */
  blobs: BlobSource;
}

/** A finished stage: what the next stage (or COPY --from) starts from. */
interface StageResult {
  key: string;
  config: ImageConfig;
  layers: LayerDescriptor[];
  blobs: BlobSource;
  fs: Lazy<FsIndex>;
}

type Lazy<T> = () => Promise<T>;

interface Made {
  entries: LayerEntry[];
  /** Content digests of the file entries; absent when unknown (RUN), which turns off reuse by content. */
  digests?: Map<LayerEntry, () => Promise<string>>;
}

/**
 * A key naming a layer by what it holds: every entry's path, type, metadata and content, and the
 * settings that shape its bytes. Undefined when a file's content digest is unknown.
 */
async function layerContentKey(entries: LayerEntry[], digests: Map<LayerEntry, () => Promise<string>>, settings: LayerSettings): Promise<string | undefined> {
  const lines: string[] = [];
  for (const e of entries) {
    let content = '';
    if (e.type === 'file' && (e.size ?? 0) > 0) {
      const d = digests.get(e) ?? (e.source?.kind === 'bytes' ? async () => sha256(e.source!.kind === 'bytes' ? e.source!.data : '') : undefined);
      if (!d) return undefined;
      content = await d();
    }
    const mtime = Math.min(e.mtime ?? settings.epoch, settings.epoch);
    lines.push(`${e.path}\t${e.type}\t${e.mode}\t${e.uid}:${e.gid}\t${mtime}\t${e.linkname ?? ''}\t${e.linkKey ?? ''}\t${content}`);
  }
  lines.sort();
  return sha256(`lading-layer-content-v1\n${JSON.stringify(settings)}\n${lines.join('\n')}`);
}

/** What a step reads: its description for the key, and the sources themselves (on a miss). */
interface StepInputs {
  /** Undefined when the key is computed after the layer (one pass over cold files). */
  describe?: string[];
  describeAfter?: () => Promise<string[]>;
  matches: () => Promise<CopyMatch[]>;
}

function lazy<T>(make: () => Promise<T>): Lazy<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}

export async function runBuild(options: EngineOptions): Promise<EngineResult> {
  const started = Date.now();
  const emit = (e: BuildEvent): void => options.onEvent?.(e);
  const frontend = loadDockerfile(options.dockerfile.text, {
    file: options.dockerfile.path,
    buildArgs: options.buildArgs,
    target: options.target,
    buildPlatform: options.buildPlatform,
    targetPlatform: options.platform,
    ...(options.network ? { network: options.network } : {}),
  });
  const { graph } = frontend;
  checkEmulation(graph, options.platform, options.buildPlatform, options.binfmtDir);
  const warnings = graph.warnings.map((w) => (w.location ? `${w.location.file}:${w.location.line}: ${w.message}` : w.message));
  for (const w of graph.warnings) emit({ type: 'warning', message: w.message, file: w.location?.file, line: w.location?.line });
  emit({ type: 'build-start', stages: graph.order, platform: platformToString(options.platform) });

  const builder = new Builder(options, frontend, emit);
  try {
    const final = await builder.stage(graph.target);
    const image = assembleImage({ config: final.config, layers: final.layers, format: options.format, blobs: final.blobs });
    emit({
      type: 'build-done',
      digest: image.digest,
      ms: Date.now() - started,
      layersMade: builder.reports.filter((r) => !r.cached && r.layer).length,
      layersCached: builder.reports.filter((r) => r.cached && r.layer).length,
    });
    const finalChain = new Set<number>();
    for (let i: number | undefined = graph.target; i !== undefined; ) {
      finalChain.add(i);
      const base: StageBase = graph.stages[i]!.base;
      i = base.kind === 'stage' ? base.index : undefined;
    }
    const cacheEntries = builder.cacheEntries.map((e) => ({ ...e, inFinalImage: finalChain.has(e.stage) }));
    return { image, layers: final.layers, steps: builder.reports, warnings, bases: builder.bases, cacheEntries, blobs: layeredBlobSource(options.store, builder.allFallbacks) };
  } finally {
    await builder.dispose();
  }
}

class Builder {
  readonly reports: StepReport[] = [];
  readonly bases: { ref: string; digest: string }[] = [];
  readonly cacheEntries: Omit<CacheExportEntry, 'inFinalImage'>[] = [];
  /** Where every layer not in the store can be read, across stages. */
  readonly allFallbacks = new Map<string, BlobSource>();
  /** Layers being written, by content key, so two stages making the same layer write it once. */
  readonly writing: Map<string, Promise<LayerDescriptor>>;
  private readonly indexer: FsIndexer;
  readonly explainStore: ExplainStore;
  private readonly results = new Map<number, Promise<StageResult>>();
  private readonly sessions: RunSession[] = [];
  /** The store held no record when this build started: nothing it does can be a cache hit. */
  readonly storeWasEmpty: Promise<boolean>;

  constructor(
    private readonly options: EngineOptions,
    private readonly frontend: Frontend,
    private readonly emit: (e: BuildEvent) => void,
  ) {
    this.indexer = new FsIndexer(options.store);
    this.explainStore = new ExplainStore(options.store.root);
    this.writing = options.layerWrites ?? new Map();
    // Only the one-pass COPY asks; other builds do not look.
    this.storeWasEmpty = options.singlePass ? options.cache.isEmpty() : Promise.resolve(false);
  }

  /** A stage's result, built once; its dependencies start at the same time and are shared. */
  stage(index: number): Promise<StageResult> {
    let p = this.results.get(index);
    if (!p) {
      const node = this.frontend.graph.stages[index]!;
      p = (async () => {
        const deps = await Promise.allSettled(node.dependsOn.map((d) => this.stage(d)));
        const failed = deps.find((d): d is PromiseRejectedResult => d.status === 'rejected');
        if (failed) throw failed.reason;
        return this.buildStage(node);
      })();
      this.results.set(index, p);
    }
    return p;
  }

  async dispose(): Promise<void> {
    await Promise.allSettled(this.sessions.map((s) => s.dispose()));
  }

  private noCacheFor(node: StageNode): boolean {
    if (this.options.noCache) return true;
    return (this.options.noCacheFilter ?? []).some(
      (f) => f === String(node.stage.index) || (node.stage.name !== undefined && f.toLowerCase() === node.stage.name),
    );
  }

  private async buildStage(node: StageNode): Promise<StageResult> {
    const run = new StageRun(this, node, node.platform ? parsePlatform(node.platform) : this.options.platform);
    return run.execute();
  }

  // The pieces StageRun needs from the build as a whole.
  get opts(): EngineOptions {
    return this.options;
  }
  get fe(): Frontend {
    return this.frontend;
  }
  get fsIndexer(): FsIndexer {
    return this.indexer;
  }
  send(e: BuildEvent): void {
    this.emit(e);
  }
  track(session: RunSession): void {
    this.sessions.push(session);
  }
  untrack(session: RunSession): void {
    const i = this.sessions.indexOf(session);
    if (i >= 0) this.sessions.splice(i, 1);
  }
  noCacheForNode(node: StageNode): boolean {
    return this.noCacheFor(node);
  }
}

/** One stage being built: its key chain, config, layers and (when RUN needs it) a root fs. */
class StageRun {
  private key = '';
  private layers: LayerDescriptor[] = [];
  private history: HistoryEntry[] = [];
  private readonly fallbacks = new Map<string, BlobSource>();
  private fs: Lazy<FsIndex> = async () => new FsIndex();
  private session?: RunSession;
  private readonly created: string;
  /** Folders holding unpacked or downloaded files until their layer is written. */
  private readonly temps: string[] = [];
  /** The key and identity of what the stage starts from, for --explain. */
  private baseKey = '';
  private baseIdentity = '';

  constructor(
    private readonly b: Builder,
    private readonly node: StageNode,
    private readonly platform: Platform,
  ) {
    this.created = new Date(b.opts.layer.epoch * 1000).toISOString();
  }

  private get o(): EngineOptions {
    return this.b.opts;
  }

  private blobs(): BlobSource {
    return layeredBlobSource(this.o.store, this.fallbacks);
  }

  async execute(): Promise<StageResult> {
    throwIfAborted(this.o.signal);
    // Hash the context files the stage copies while its base image is being resolved (a
    // registry round trip): when the COPY steps come, their keys are ready.
    // Not into an empty store when COPY reads cold files once (see `singlePass`): hashing them
    // here would make that a second read, and no key can hit anyway.
    const warming = this.o.singlePass && (await this.b.storeWasEmpty) ? Promise.resolve() : this.warmContextHashes();
    const base = await this.resolveBase();
    await warming;
    this.key = base.key;
    this.baseKey = base.key;
    this.layers = [...base.layers];
    this.history = [...(base.config.history ?? [])];
    for (const l of base.layers) {
      this.fallbacks.set(l.digest, base.blobs);
      this.b.allFallbacks.set(l.digest, base.blobs);
    }
    this.fs = base.fs;
    this.b.send({ type: 'stage-start', stage: this.node.stage.index, stageName: this.node.stage.name, base: this.node.stage.from.image });

    const dispatcher = this.b.fe.dispatcher(this.node.stage.index, base.config.config, this.platform);
    const commands: Command[] = [...this.b.fe.triggers(base.config.config?.OnBuild, this.node.stage.from.location), ...this.node.stage.commands];
    try {
      for (let i = 0; i < commands.length; i++) {
        throwIfAborted(this.o.signal);
        const cmd = commands[i]!;
        const step = dispatcher.dispatch(cmd);
        if (step) await this.stepWithCleanup(step, { stage: this.node.stage.index, stageName: this.node.stage.name, step: i + 1, total: commands.length, text: step.history, line: cmd.location.line });
      }
    } finally {
      if (this.session) {
        this.b.untrack(this.session);
        await this.session.dispose();
      }
    }

    const container: ContainerConfig = dispatcher.config;
    const author = dispatcher.author ?? base.config.author;
    const config: ImageConfig = {
      architecture: this.platform.architecture,
      os: this.platform.os,
      ...(this.platform.variant ? { variant: this.platform.variant } : {}),
      created: this.created,
      ...(author ? { author } : {}),
      config: container,
      rootfs: { type: 'layers', diff_ids: this.layers.map((l) => l.diffID) },
      history: this.history,
    };
    return { key: this.key, config, layers: this.layers, blobs: this.blobs(), fs: this.fs };
  }

  /** Where this stage's step at `position` records its last key inputs (for --explain). */
  private slot(position: number): string {
    return slotId({
      contextDir: this.o.context.root,
      dockerfile: this.o.dockerfile.path,
      stage: this.node.stage.name ?? String(this.node.stage.index),
      position,
      platform: platformToString(this.platform),
    });
  }

  /**
   * Best effort, errors ignored (the step itself reports them): the literal sources of the
   * stage's COPY and ADD steps from the context, hashed into the stat cache.
   */
  private async warmContextHashes(): Promise<void> {
    const sources: { source: string; excludes: string[] }[] = [];
    for (const cmd of this.node.stage.commands) {
      if ((cmd.kind !== 'copy' && cmd.kind !== 'add') || cmd.from !== undefined || cmd.heredocs.length > 0) continue;
      for (const source of cmd.sources) {
        if (!source.includes('$') && !isUrl(source)) sources.push({ source, excludes: cmd.excludes });
      }
    }
    await Promise.all(
      sources.map(async ({ source, excludes }) => {
        try {
          for (const m of await this.o.context.match(source, excludes)) {
            const files = m.root.type === 'directory' ? m.entries : [m.root];
            await Promise.all(files.filter((f) => f.type === 'file').map((f) => this.o.context.digest(f)));
          }
        } catch {
          // reported by the step that reads it
        }
      }),
    );
  }

  private async resolveBase(): Promise<StageResult> {
    const { base } = this.node;
    const p = platformToString(this.platform);
    if (base.kind === 'stage') return this.b.stage(base.index);
    if (base.kind === 'scratch') {
      this.baseIdentity = 'scratch';
      return {
        key: baseKey('scratch', 'scratch', p),
        config: { architecture: this.platform.architecture, os: this.platform.os, rootfs: { type: 'layers', diff_ids: [] } },
        layers: [],
        blobs: layeredBlobSource(this.o.store, new Map()),
        fs: async () => new FsIndex(),
      };
    }
    const image = await this.o.resolveImage(base.ref, this.platform);
    this.baseIdentity = `${base.ref}@${image.digest}`;
    this.b.bases.push({ ref: base.ref, digest: image.digest });
    this.b.send({ type: 'base-resolved', stage: this.node.stage.index, ref: base.ref, digest: image.digest });
    const layers = layersOf(image);
    return {
      key: baseKey('image', image.digest, p),
      config: image.config,
      layers,
      blobs: image.blobs,
      fs: lazy(() => this.b.fsIndexer.indexAll(layers, image.blobs)),
    };
  }

  private async stepWithCleanup(step: Step, ref: StepRef): Promise<void> {
    try {
      await this.step(step, ref);
    } finally {
      await this.removeTemps();
    }
  }

  private async step(step: Step, ref: StepRef): Promise<void> {
    const t0 = Date.now();
    this.b.send({ type: 'step-start', ref });
    if (step.kind === 'config') {
      this.history.push({ created: this.created, created_by: step.history, comment: 'lading', empty_layer: true });
      this.b.send({ type: 'step-done', ref, ms: Date.now() - t0, emptyLayer: true });
      return;
    }
    const inputs = await this.inputs(step);
    // Known now, or (one pass over cold files) once the layer is written.
    let key = inputs.describe ? stepKey(this.key, step.key, inputs.describe, this.o.layer) : undefined;
    const hit = key === undefined || this.b.noCacheForNode(this.node) ? undefined : await this.lookup(key);
    let layer: LayerDescriptor | null;
    let missReason: string | undefined;
    let reused = false;
    if (hit !== undefined && key !== undefined) {
      layer = hit;
      if (layer) this.appendLayer(layer, undefined);
      if (layer && this.session) await this.session.addLayer({ descriptor: layer, open: () => this.blobs().open(layer!) });
      this.b.send({ type: 'step-cached', ref, layer: layer?.digest });
    } else {
      const made = await this.make(step, inputs, ref);
      const entries = made.entries;
      // With one pass the digests are known only once the files are read: no reuse by content
      // beforehand, and the key is worked out while the layer's last blocks compress.
      const knownKey = key;
      let read: { key: string; inputs: SlotState['inputs']; indexed: Promise<IndexedLayer> } | undefined;
      const onceRead = async (): Promise<void> => {
        const describe = inputs.describe ?? (await inputs.describeAfter!());
        read = {
          key: knownKey ?? stepKey(this.key, step.key, describe, this.o.layer),
          inputs: inputsOf(describe),
          indexed: indexedLayerOf(entries, this.o.layer.epoch),
        };
      };
      const written = entries.length === 0 ? undefined : await this.write(entries, ref, made.digests, key === undefined, onceRead);
      layer = written?.layer ?? null;
      reused = written?.reused ?? false;
      if (read === undefined) await onceRead();
      const { indexed } = read!;
      key = read!.key;
      const slot = this.slot(ref.step);
      const state: SlotState = { key, parent: this.key, step: step.key, inputs: read!.inputs };
      if (this.key === this.baseKey) state.base = this.baseIdentity;
      if (this.o.explain) {
        missReason = explainMiss(await this.b.explainStore.load(slot), state);
        this.b.send({ type: 'step-miss-reason', ref, reason: missReason });
      }
      await this.o.cache.put({ key, layer, kind: 'step' });
      await this.o.cache.put({ key: parentMarker(this.key), layer: null, kind: 'parent' });
      await this.b.explainStore.save(slot, state);
      if (layer) {
        this.appendLayer(layer, await indexed);
        if (this.session && step.kind !== 'run') await this.session.addLayer({ descriptor: layer, open: () => this.blobs().open(layer!) });
      }
      this.b.send({ type: 'step-done', ref, ms: Date.now() - t0, layer: layer?.digest, layerBytes: layer?.size, emptyLayer: layer === null });
    }
    this.key = key;
    this.b.cacheEntries.push({ key, layer, stage: this.node.stage.index });
    this.history.push({ created: this.created, created_by: step.history, comment: 'lading', ...(layer ? {} : { empty_layer: true }) });
    this.b.reports.push({
      stage: this.node.stage.index,
      text: step.history,
      cached: hit !== undefined,
      ...(layer ? { layer: layer.digest } : {}),
      ms: Date.now() - t0,
      ...(missReason !== undefined ? { missReason } : {}),
      ...(reused ? { reusedByContent: true } : {}),
    });
  }

  private async removeTemps(): Promise<void> {
    const dirs = this.temps.splice(0);
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  }

  private async lookup(key: string): Promise<LayerDescriptor | null | undefined> {
    const record = await this.o.cache.get(key);
    // A pruned blob makes a local record useless: ask the shared cache instead.
    if (record && (!record.layer || (await this.o.store.has(record.layer.digest)))) return record.layer;
    const remote = await this.o.remoteCache?.lookup(key);
    if (!remote) return undefined;
    if (remote.layer) {
      // The layer stays in the registry until something needs its bytes.
      this.fallbacks.set(remote.layer.digest, remote.blobs);
      this.b.allFallbacks.set(remote.layer.digest, remote.blobs);
    }
    return remote.layer;
  }

  private appendLayer(layer: LayerDescriptor, indexed: IndexedLayer | undefined): void {
    this.layers.push(layer);
    const before = this.fs;
    const blobs = this.blobs();
    if (indexed) this.b.fsIndexer.remember(layer.diffID, indexed);
    this.fs = lazy(async () => {
      const idx = (await before()).clone();
      idx.apply(indexed ?? (await this.b.fsIndexer.index(layer, blobs)));
      return idx;
    });
  }

  /**
   * Write a layer, unless a layer with exactly these entries (paths, metadata, contents) and
   * settings was written before, here or by another platform of this build: then reuse it. That is
   * what makes a COPY on a different base (another platform, an updated base image) cost a hash,
   * not a compression, when what it copies is the same.
   */
  private async write(
    entries: LayerEntry[],
    ref: StepRef,
    digests: Map<LayerEntry, () => Promise<string>> | undefined,
    digestsAfterWriting = false,
    onceRead?: () => Promise<void>,
  ): Promise<{ layer: LayerDescriptor; reused: boolean }> {
    if (digestsAfterWriting && digests) {
      // One pass: nothing to look up first, but later builds can still reuse this layer by content.
      // What needs the digests (this content key, the caller's step key) is worked out as soon as
      // every file has been read, on a main thread that is otherwise idle while the last blocks
      // compress.
      let entriesWritten!: () => void;
      const read = new Promise<void>((resolve) => (entriesWritten = resolve));
      const writing = this.writeNew(entries, ref, entriesWritten);
      await Promise.race([read, writing]);
      const [contentKey] = await Promise.all([layerContentKey(entries, digests, this.o.layer), onceRead?.()]);
      const layer = await writing;
      if (contentKey) await this.o.cache.put({ key: contentKey, layer, kind: 'content' });
      return { layer, reused: false };
    }
    const contentKey = digests ? await layerContentKey(entries, digests, this.o.layer) : undefined;
    if (contentKey) {
      const known = await this.o.cache.get(contentKey);
      if (known?.layer && (await this.o.store.has(known.layer.digest))) return { layer: known.layer, reused: true };
      const inFlight = this.b.writing.get(contentKey);
      if (inFlight) return { layer: await inFlight, reused: true };
    }
    const writing = this.writeNew(entries, ref);
    if (!contentKey) return { layer: await writing, reused: false };
    this.b.writing.set(contentKey, writing);
    try {
      const layer = await writing;
      await this.o.cache.put({ key: contentKey, layer, kind: 'content' });
      return { layer, reused: false };
    } finally {
      this.b.writing.delete(contentKey);
    }
  }

  private writeNew(entries: LayerEntry[], ref: StepRef, onEntriesWritten?: () => void): Promise<LayerDescriptor> {
    const total = entries.reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0);
    const started = performance.now();
    let written = 0;
    let compressed = 0;
    return writeLayer(entries, this.o.store, {
      compression: this.o.layer.compression,
      level: this.o.layer.level,
      epoch: this.o.layer.epoch,
      format: this.o.format,
      signal: this.o.signal,
      onBytes: (n) => {
        written += n;
        this.b.send({ type: 'layer-progress', ref, bytes: n, total, compressed, bytesPerSecond: rate(written, started) });
      },
      onCompressedBytes: (n) => {
        compressed += n;
      },
      onEntriesWritten,
    });
  }

  /** What a step reads besides its instruction, described for the key (no image files needed). */
  private async inputs(step: Exclude<Step, { kind: 'config' }>): Promise<StepInputs> {
    if (step.kind === 'workdir') return { describe: [], matches: async () => [] };
    if (step.kind === 'run') return { describe: await this.runInputs(step), matches: async () => [] };
    return this.copyInputs(step);
  }

  /**
   * What a RUN reads besides its own words: the content of what its bind mounts show (the context
   * files, another stage, an image). Cache mounts and secrets are not part of the key, as in BuildKit.
   */
  private async runInputs(step: RunStep): Promise<string[]> {
    const lines: string[] = [];
    for (const m of step.mounts) {
      if (m.type !== 'bind') continue;
      if (m.from === undefined) {
        const source = m.source ?? '.';
        const matches = await contextMatches(this.o.context, [source], [], step.location, 'RUN --mount=type=bind');
        lines.push(`bind:${m.target}`, ...(await describeSources(matches)));
      } else {
        lines.push(`bind:${m.target}:${(await this.fileSystemOf(m.from)).identity}:${m.source ?? ''}`);
      }
    }
    return lines;
  }

  /**
   * Sources of COPY/ADD. The key needs only their digests; unpacking archives happens in
   * `matches()`, which runs on a cache miss alone.
   */
  private async copyInputs(step: CopyStep): Promise<StepInputs> {
    if (step.from !== undefined) return this.fromInputs(step, step.from);
    const what = step.kind.toUpperCase();
    const heredocSources = step.sources.filter((s) => isHeredocSource(s, step.inline));
    const urlSources = step.sources.filter((s) => !isHeredocSource(s, step.inline) && isUrl(s));
    const fileSources = step.sources.filter((s) => !isHeredocSource(s, step.inline) && !isUrl(s));
    if (urlSources.length > 0 && step.kind === 'copy') {
      throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `COPY cannot fetch URLs (${urlSources[0]})`, {
        location: step.location,
        hint: 'use ADD to download a URL',
      });
    }
    const work = urlSources.length > 0 ? await this.tempDir('add') : undefined;
    const downloaded: CopyMatch[] = [];
    for (const [i, url] of urlSources.entries()) {
      const dir = `${work!}/${i}`;
      await fs.mkdir(dir);
      downloaded.push(await downloadUrl(url, dir, { checksum: step.checksum, signal: this.o.signal, location: step.location }));
    }
    let local = await contextMatches(this.o.context, fileSources, step.excludes, step.location, what);
    const inline = heredocMatches(step.inline, heredocSources);
    // A cold COPY reads its files once when its key cannot be in the cache (nothing was ever built
    // on this parent): the writer hashes them, the key follows. Otherwise the key comes first,
    // since a fresh checkout of unchanged files (cold to the stat cache) still hits.
    const onePass =
      this.o.singlePass === true &&
      step.kind === 'copy' &&
      mostlyCold(local) &&
      (await this.o.cache.get(parentMarker(this.key))) === undefined;
    if (onePass) local = await contextMatches(this.o.context, fileSources, step.excludes, step.location, what, { read: new Map() });
    const all = [...local, ...downloaded, ...inline];
    if (onePass) return { describeAfter: () => describeSources(all), matches: async () => all };
    return {
      describe: await describeSources(all),
      matches: async () => {
        if (step.kind !== 'add' || step.unpack === false) return all;
        // ADD unpacks local tar archives (recognised by content) into the destination.
        const out: CopyMatch[] = [];
        for (const m of all) {
          const src = m.root.source;
          if (!local.includes(m) || m.root.type !== 'file' || src?.kind !== 'path' || !(await isArchive(src.path))) {
            out.push(m);
            continue;
          }
          out.push(await unpackArchive(src.path, await this.tempDir('unpack'), m.path, this.o.signal));
        }
        return out;
      },
    };
  }

  /**
   * `COPY --from`: another stage (by name or index) or an image. The key names that file system
   * by its own key or digest; files are read from its layers only on a miss.
   */
  private async fromInputs(step: CopyStep, from: string): Promise<StepInputs> {
    const stages = this.b.fe.graph.stages;
    const byName = stages.find((n) => n.stage.name !== undefined && n.stage.name === from.toLowerCase());
    const byIndex = /^\d+$/.test(from) ? stages[Number(from)] : undefined;
    const stageNode = byName ?? byIndex;
    let identity: string;
    let source: () => Promise<FileSystemSource>;
    if (stageNode) {
      const result = await this.b.stage(stageNode.stage.index);
      identity = `stage:${result.key}`;
      source = async () => ({ name: stageNode.stage.name ?? `stage ${stageNode.stage.index}`, fs: await result.fs(), layers: result.layers, blobs: result.blobs });
    } else {
      const image = await this.o.resolveImage(from, this.platform);
      const layers = layersOf(image);
      identity = `image:${image.digest}`;
      source = async () => ({ name: from, fs: await this.b.fsIndexer.indexAll(layers, image.blobs), layers, blobs: image.blobs });
    }
    return {
      describe: [identity],
      matches: async () => {
        const src = await source();
        const { matches, needed } = stageMatches(src, step.sources, step.location, step.kind.toUpperCase());
        await loadContents(src, matches, needed, await this.tempDir('from'), this.o.signal);
        return matches;
      },
    };
  }

  private async tempDir(prefix: string): Promise<string> {
    const dir = await this.o.store.makeTempDir(prefix);
    this.temps.push(dir);
    return dir;
  }

  /** The step's layer entries, and (where known) how to get each file's content digest. */
  private async make(step: Exclude<Step, { kind: 'config' }>, inputs: StepInputs, ref: StepRef): Promise<Made> {
    switch (step.kind) {
      case 'copy':
      case 'add':
        return this.makeCopy(step, await inputs.matches());
      case 'workdir':
        return { entries: await this.makeWorkdir(step), digests: new Map() };
      case 'run':
        return { entries: await this.makeRun(step, ref) };
    }
  }

  private async owner(spec: string | undefined, fs: FsIndex | undefined, mode: 'chown' | 'user' = 'chown'): Promise<Ids | undefined> {
    if (spec === undefined || spec === '') return undefined;
    // Numeric ids need no image files (COPY --link with --chown=1000:1000 reads nothing).
    if (mode === 'chown' && /^\d+(:\d+)?$/.test(spec)) return resolveIds(spec, undefined, undefined, mode);
    const idx = fs ?? (await this.fs());
    return resolveIds(spec, idx.fileContent('etc/passwd'), idx.fileContent('etc/group'), mode);
  }

  private async makeCopy(step: CopyStep, matches: CopyMatch[]): Promise<Made> {
    // --link layers are independent of what is below them: no need to read the image.
    const fs = step.link ? undefined : await this.fs();
    const owner = await this.owner(step.chown, fs);
    const plan = planCopy(matches, {
      dest: step.dest,
      destIsDir: step.destIsDir,
      parents: step.parents,
      fs,
      owner,
      chmod: step.chmod,
      location: step.location,
    });
    const digests = new Map<LayerEntry, () => Promise<string>>();
    for (const p of plan) if (p.entry.type === 'file' && p.file?.digest) digests.set(p.entry, p.file.digest);
    return { entries: plan.map((p) => p.entry), digests };
  }

  private async makeWorkdir(step: WorkdirStep): Promise<LayerEntry[]> {
    const fs = await this.fs();
    if (fs.isDirectory(step.path)) return [];
    const owner = step.user ? await this.owner(step.user, fs) : undefined;
    const dir = { rel: '', type: 'directory' as const, mode: 0o755, uid: 0, gid: 0, size: 0 };
    return planCopy([{ path: '', root: dir, entries: [] }], {
      dest: step.path,
      destIsDir: true,
      parents: false,
      fs,
      owner,
      location: step.location,
    }).map((p) => p.entry);
  }

  private async makeRun(step: RunStep, ref: StepRef): Promise<LayerEntry[]> {
    if (!this.o.runner) {
      throw new LadingError(ERROR_CODES.SANDBOX, 'this build has a RUN step but no sandbox to run it in', {
        location: step.location,
        hint: 'install bubblewrap (bwrap) or proot, or run lading as root (chroot)',
      });
    }
    const mounts = await this.runMounts(step);
    if (!this.session) {
      const session = await this.o.runner.session();
      this.session = session;
      this.b.track(session);
      this.b.send({ type: 'sandbox', stage: this.node.stage.index, description: session.description });
      const blobs = this.blobs();
      for (const layer of this.layers) await session.addLayer({ descriptor: layer, open: () => blobs.open(layer) });
    }
    try {
      const outcome = await this.session.run({
        argv: step.argv,
        env: step.env,
        workdir: step.workdir,
        ...(step.user ? { user: step.user } : {}),
        network: step.network,
        mounts,
        signal: this.o.signal,
        onOutput: (chunk, stream) => this.b.send({ type: 'step-output', ref, stream, text: chunk.toString('utf8') }),
      });
      for (const note of outcome.notes) this.b.send({ type: 'warning', message: `${step.history}: ${note}`, file: step.location.file, line: step.location.line });
      return dropUntouchedDirectories(outcome.entries, await this.fs());
    } catch (err) {
      throw withLocation(err, step.location);
    }
  }

  /** Host sides of a RUN's mounts: cache folders, bind sources, secret files, heredoc scripts. */
  private async runMounts(step: RunStep): Promise<RunMount[]> {
    const out: RunMount[] = [];
    for (const m of step.mounts) {
      const target = m.target;
      switch (m.type) {
        case 'cache':
          out.push({
            type: 'cache',
            target: target!,
            cacheRoot: path.join(this.o.store.root, 'cache-mounts'),
            ...(m.id !== undefined ? { id: m.id } : {}),
            ...(m.sharing ? { sharing: m.sharing } : {}),
            readonly: m.readonly,
            ...(m.mode !== undefined ? { mode: m.mode } : {}),
            ...(m.uid !== undefined ? { uid: m.uid } : {}),
            ...(m.gid !== undefined ? { gid: m.gid } : {}),
          });
          break;
        case 'bind':
          if (m.from === undefined) out.push({ type: 'bind', target: target!, ...(await this.contextBindSource(m.source ?? '.', step)), rw: !m.readonly });
          else out.push({ type: 'bind', target: target!, from: await this.bindSource(m.from), ...(m.source ? { source: m.source } : {}), rw: !m.readonly });
          break;
        case 'secret': {
          const secret = this.o.secrets?.get(m.id!);
          if (!secret) {
            if (m.required) {
              throw new LadingError(ERROR_CODES.USAGE, `RUN needs the secret "${m.id}", which was not given`, {
                location: step.location,
                hint: `pass it with --secret id=${m.id},src=FILE (or env=VARIABLE)`,
              });
            }
            break;
          }
          out.push({
            type: 'secret',
            id: m.id!,
            file: secret,
            ...(target ? { target } : {}),
            ...(m.mode !== undefined ? { mode: m.mode } : {}),
            ...(m.uid !== undefined ? { uid: m.uid } : {}),
            ...(m.gid !== undefined ? { gid: m.gid } : {}),
          });
          break;
        }
        case 'tmpfs':
          out.push({ type: 'tmpfs', target: target!, ...(m.size ? { size: parseTmpfsSize(m.size, step) } : {}) });
          break;
        case 'ssh':
          throw new LadingError(ERROR_CODES.USAGE, 'RUN --mount=type=ssh is not supported', {
            location: step.location,
            hint: 'forward credentials as a secret (--mount=type=secret) instead',
          });
      }
    }
    // `RUN <<EOF` bodies starting with #! run as files the sandbox provides read-only.
    const scripts = step.heredocFiles.filter((h) => h.path);
    if (scripts.length > 0) {
      const dir = await this.tempDir('pipes');
      for (const h of scripts) await fs.writeFile(path.join(dir, path.basename(h.path!)), h.content, { mode: 0o755 });
      out.push({ type: 'bind', target: path.posix.dirname(scripts[0]!.path!), from: dir, rw: false });
    }
    return out;
  }

  /** A folder holding what `RUN --mount=type=bind,from=X` shows: a stage's or an image's root. */
  private async bindSource(from: string): Promise<string> {
    const src = await this.fileSystemOf(from);
    const dir = await this.tempDir('bind');
    await materializeRootfs(dir, src.layers, src.blobs, this.o.signal);
    return dir;
  }

  /**
   * A bind mount from the context shows the context as the build sees it: a copy of `source`
   * without what .dockerignore excludes (BuildKit's mount shows the context as sent, too).
   */
  private async contextBindSource(source: string, step: RunStep): Promise<{ from: string; source?: string }> {
    const matches = await contextMatches(this.o.context, [source], [], step.location, 'RUN --mount=type=bind');
    const dir = await this.tempDir('bind');
    const dirModes: [string, number][] = [];
    for (const match of matches) {
      const files = match.root.type === 'directory' ? match.entries : [match.root];
      for (const f of files) {
        const rel = match.root.type === 'directory' ? (match.root.rel === '' ? f.rel : f.rel.slice(match.root.rel.length + 1)) : path.posix.basename(match.path);
        const dest = path.join(dir, rel);
        await fs.mkdir(path.dirname(dest), { recursive: true });
        if (f.type === 'directory') {
          await fs.mkdir(dest, { recursive: true });
          dirModes.push([dest, f.mode]);
        } else if (f.type === 'symlink') await fs.symlink(f.linkname ?? '', dest);
        else if (f.source?.kind === 'path') {
          await fs.copyFile(f.source.path, dest);
          await fs.chmod(dest, f.mode);
        }
      }
    }
    // Folder modes last, deepest first, so a read-only folder never blocks filling it.
    for (const [d, mode] of dirModes.reverse()) await fs.chmod(d, mode);
    // A single file is mounted as that file (source=requirements.txt,target=/tmp/req.txt).
    const only = matches.length === 1 ? matches[0]! : undefined;
    if (only && only.root.type !== 'directory') return { from: dir, source: path.posix.basename(only.path) };
    return { from: dir };
  }

  /** Another stage (by name or index) or an image, as layers and a way to read them. */
  private async fileSystemOf(from: string): Promise<{ identity: string; layers: LayerDescriptor[]; blobs: BlobSource }> {
    const stages = this.b.fe.graph.stages;
    const node = stages.find((n) => n.stage.name !== undefined && n.stage.name === from.toLowerCase()) ?? (/^\d+$/.test(from) ? stages[Number(from)] : undefined);
    if (node) {
      const result = await this.b.stage(node.stage.index);
      return { identity: `stage:${result.key}`, layers: result.layers, blobs: result.blobs };
    }
    const image = await this.o.resolveImage(from, this.platform);
    return { identity: `image:${image.digest}`, layers: layersOf(image), blobs: image.blobs };
  }
}

/**
 * A folder a step only passed through (created and deleted a file in /tmp, say) shows up in the
 * snapshot with a new modification time alone. Like BuildKit's differ, which compares folders by
 * mode and owner, such a folder is not a change: it is dropped unless something below it changed.
 */
export function dropUntouchedDirectories(entries: LayerEntry[], before: FsIndex): LayerEntry[] {
  const keptBelow = new Set<string>();
  const kept = new Set<LayerEntry>();
  const deepestFirst = [...entries].sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const e of deepestFirst) {
    const was = e.type === 'directory' ? before.get(e.path) : undefined;
    const untouched = was?.type === 'directory' && was.mode === e.mode && was.uid === e.uid && was.gid === e.gid && !keptBelow.has(e.path);
    if (untouched) continue;
    kept.add(e);
    for (let dir = e.path; dir.includes('/'); ) {
      dir = dir.slice(0, dir.lastIndexOf('/'));
      keptBelow.add(dir);
    }
  }
  return entries.filter((e) => kept.has(e));
}

function parseTmpfsSize(size: string, step: RunStep): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(size.trim());
  if (!m) throw new LadingError(ERROR_CODES.DOCKERFILE_INVALID, `invalid tmpfs size "${size}"`, { location: step.location, hint: 'write a size such as 64m' });
  return Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase());
}

/** Errors from a step get its Dockerfile location when they have none. */
function withLocation(err: unknown, location: SourceLocation): unknown {
  if (err instanceof LadingError && !err.location) {
    return new LadingError(err.code, err.message, { location, hint: err.hint, cause: err, details: err.details, related: err.related });
  }
  return err;
}

export { runBuild as build };
