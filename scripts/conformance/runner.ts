/**
 * The runner as a library: open a run (a temporary folder, one buildah storage, the bases), build
 * each case with both builders, compare, close. `scripts/conformance.ts` and
 * test/conformance/conformance.test.ts are its two callers.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { basesNamedIn, makeBase, type BaseImage, type BaseKind } from './bases.ts';
import { BuildahSession } from './buildah.ts';
import { loadGlobalKnown, type Case, type KnownDifference } from './cases.ts';
import { applyKnown, compareImages, type Difference } from './compare.ts';
import { readImageConfig, snapshot, type LayerSummary } from './image.ts';
import { ladingBuild } from './lading.ts';

export type CaseStatus = 'match' | 'known' | 'differ' | 'error' | 'skipped';

export interface CaseResult {
  name: string;
  /** match: no difference; known: only listed ones; differ: an unlisted one; error: a build failed; skipped: a base could not be made. */
  status: CaseStatus;
  differences: Difference[];
  /** Differences the case lists that did not occur (the list is stale, or buildah changed). */
  stale: KnownDifference[];
  buildahError?: string;
  ladingError?: string;
  /** The harness itself failed (umoci, tar, buildah push or inspect): the case was not compared. */
  harnessError?: string;
  /** lading failed only because this lading has no RUN support (or no sandbox). */
  runUnsupported?: boolean;
  skipReason?: string;
  layers?: { buildah: LayerSummary[]; lading: LayerSummary[] };
  ms: number;
  /** Milliseconds each phase took (buildah build, lading build, buildah push, unpacks). */
  phases: Record<string, number>;
}

export interface RunOptions {
  /** Keep the temporary folder (builds, unpacked roots) for a look afterwards. */
  keep?: boolean;
  log?: (line: string) => void;
}

type BaseOutcome = { base: BaseImage } | { unavailable: string } | { error: Error };

export class ConformanceRun {
  private readonly bases = new Map<BaseKind, Promise<BaseOutcome>>();
  private readonly cases = new Set<Promise<unknown>>();

  private constructor(
    readonly workDir: string,
    private readonly buildah: BuildahSession,
    private readonly globalKnown: KnownDifference[],
    private readonly options: RunOptions,
    private readonly controller: AbortController,
  ) {}

  /**
   * Start preparing what `cases` need: each base is made (or read from .cache) and imported into
   * buildah once, in the background, so cases on busybox start while the Debian base is imported.
   */
  static async open(cases: Case[], options: RunOptions = {}): Promise<ConformanceRun> {
    const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-conformance-'));
    const controller = new AbortController();
    const buildah = await BuildahSession.open(path.join(workDir, 'buildah'), controller.signal);
    const run = new ConformanceRun(workDir, buildah, loadGlobalKnown(), options, controller);
    for (const kind of new Set(cases.flatMap((c) => basesOf(c)))) void run.base(kind);
    return run;
  }

  /** The base of this kind, ready in buildah's storage; never rejects. */
  private base(kind: BaseKind): Promise<BaseOutcome> {
    let outcome = this.bases.get(kind);
    if (!outcome) {
      outcome = (async (): Promise<BaseOutcome> => {
        let base: BaseImage;
        try {
          this.options.log?.(`base ${kind}: preparing`);
          base = await makeBase(kind);
        } catch (err) {
          return { unavailable: `the ${kind} base could not be made here: ${(err as Error).message.split('\n')[0]}` };
        }
        try {
          // A private copy: other test runs may rebuild the shared cache while this run reads it.
          const copy = path.join(this.workDir, 'bases', kind);
          await fs.cp(base.layoutDir, copy, { recursive: true });
          base = { ...base, layoutDir: copy };
          await this.buildah.importBase(base);
        } catch (err) {
          return { error: err as Error };
        }
        return { base };
      })();
      this.bases.set(kind, outcome);
    }
    return outcome;
  }

  /** Build and compare one case. Rejects only when the run was aborted. */
  async runCase(c: Case): Promise<CaseResult> {
    const started = Date.now();
    const running = this.compare(c);
    this.cases.add(running);
    try {
      return await running;
    } catch (err) {
      if (this.controller.signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      return { name: c.name, status: 'error', differences: [], stale: [], harnessError: message, ms: Date.now() - started, phases: {} };
    } finally {
      this.cases.delete(running);
    }
  }

  /** Stop: kill every program the run started; cases in progress reject. */
  abort(): void {
    this.controller.abort();
  }

  private async compare(c: Case): Promise<CaseResult> {
    this.controller.signal.throwIfAborted();
    const started = Date.now();
    const result = (r: Omit<CaseResult, 'name' | 'ms' | 'phases'>): CaseResult => ({ name: c.name, ms: Date.now() - started, phases, ...r });
    const phases: Record<string, number> = {};
    const bases: BaseImage[] = [];
    for (const outcome of await Promise.all(basesOf(c).map((k) => this.base(k)))) {
      if ('error' in outcome) throw outcome.error;
      if ('unavailable' in outcome) return result({ status: 'skipped', differences: [], stale: [], skipReason: outcome.unavailable });
      bases.push(outcome.base);
    }
    if (Date.now() - started > 100) phases['waiting for bases'] = Date.now() - started;

    const dir = path.join(this.workDir, 'cases', c.name);
    const context = await prepareContext(c, path.join(dir, 'context'));
    const tag = `localhost/conformance/${c.name}:latest`;
    const buildArgs = c.spec.buildArgs ?? {};
    const ladingOci = path.join(dir, 'lading-oci');
    const buildahOci = path.join(dir, 'buildah-oci');
    try {
      const timed = <T>(what: string, p: Promise<T>): Promise<T> => {
        const t0 = Date.now();
        return p.finally(() => (phases[what] = Date.now() - t0));
      };
      const [b, l] = await Promise.all([
        timed('buildah build', this.buildah.build({ dockerfile: path.join(c.dir, c.spec.buildahDockerfile?.file ?? 'Dockerfile'), context, tag, buildArgs, target: c.spec.target })),
        timed('lading build', ladingBuild({
          dockerfile: path.join(c.dir, 'Dockerfile'), context, dest: ladingOci, cacheDir: path.join(this.workDir, 'lading-cache'),
          bases, buildArgs, target: c.spec.target, signal: this.controller.signal,
        })),
      ]);
      if (!b.ok || !l.ok) {
        return result({
          status: 'error', differences: [], stale: [],
          buildahError: b.ok ? undefined : b.message,
          ladingError: l.ok ? undefined : l.message,
          runUnsupported: !l.ok && l.runUnsupported && b.ok,
        });
      }
      await timed('buildah push', this.buildah.exportOci(tag, buildahOci));
      const [bConfig, lConfig, bImage, lImage] = await Promise.all([
        this.buildah.inspect(tag).then((i) => i.config),
        readImageConfig(ladingOci),
        timed('buildah unpack', snapshot(buildahOci, path.join(dir, 'buildah-bundle'), this.controller.signal)),
        timed('lading unpack', snapshot(ladingOci, path.join(dir, 'lading-bundle'), this.controller.signal)),
      ]);
      const differences = compareImages({ config: bConfig, image: bImage }, { config: lConfig, image: lImage });
      const stale = applyKnown(differences, c.spec.known ?? [], this.globalKnown);
      const status: CaseStatus = differences.some((d) => !d.known) ? 'differ' : differences.length > 0 ? 'known' : 'match';
      return result({ status, differences, stale, layers: { buildah: bImage.layers, lading: lImage.layers } });
    } finally {
      // The image stays until close(): `buildah rmi` also removes untagged parents, which are
      // the layer cache another case may be building on at that moment.
      if (!this.options.keep) await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Remove everything the run made, once the cases in progress have ended. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.cases]);
    await Promise.all(this.bases.values());
    await this.buildah.close();
    if (!this.options.keep) await fs.rm(this.workDir, { recursive: true, force: true });
    else this.options.log?.(`kept ${this.workDir}`);
  }
}

/** Cases on the Debian base first: they take longest, and the small ones fill in beside them. */
export function scheduleOrder(cases: Case[]): Case[] {
  const heavy = (c: Case): number => (basesOf(c).includes('debian') ? 0 : 1);
  return [...cases].sort((a, b) => heavy(a) - heavy(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function basesOf(c: Case): BaseKind[] {
  const texts = [readFileSync(path.join(c.dir, 'Dockerfile'), 'utf8'), ...Object.values(c.spec.buildArgs ?? {})];
  if (c.spec.buildahDockerfile) texts.push(readFileSync(path.join(c.dir, c.spec.buildahDockerfile.file), 'utf8'));
  return basesNamedIn(texts);
}

/** A copy of the case's context/ with what git cannot hold: modes, owners, empty folders, hard links. */
async function prepareContext(c: Case, dest: string): Promise<string> {
  await fs.cp(path.join(c.dir, 'context'), dest, { recursive: true, verbatimSymlinks: true });
  const p = c.spec.prepare ?? {};
  for (const d of p.emptyDirs ?? []) await fs.mkdir(path.join(dest, d), { recursive: true });
  for (const [link, target] of Object.entries(p.hardlinks ?? {})) await fs.link(path.join(dest, target), path.join(dest, link));
  for (const [file, mode] of Object.entries(p.modes ?? {})) await fs.chmod(path.join(dest, file), parseInt(mode, 8));
  for (const [file, owner] of Object.entries(p.owners ?? {})) {
    const [uid, gid] = owner.split(':').map(Number);
    await fs.lchown(path.join(dest, file), uid!, gid!);
  }
  return dest;
}
