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

export class ConformanceRun {
  private constructor(
    readonly workDir: string,
    private readonly buildah: BuildahSession,
    private readonly bases: Map<BaseKind, BaseImage>,
    private readonly unavailable: Map<BaseKind, string>,
    private readonly globalKnown: KnownDifference[],
    private readonly options: RunOptions,
  ) {}

  /** Prepare what `cases` need: bases are made (or read from .cache) and imported into buildah once. */
  static async open(cases: Case[], options: RunOptions = {}): Promise<ConformanceRun> {
    const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'lading-conformance-'));
    const buildah = await BuildahSession.open(path.join(workDir, 'buildah'));
    const bases = new Map<BaseKind, BaseImage>();
    const unavailable = new Map<BaseKind, string>();
    const kinds = new Set(cases.flatMap((c) => basesOf(c)));
    try {
      for (const kind of kinds) {
        let base: BaseImage;
        try {
          options.log?.(`base ${kind}: preparing`);
          base = await makeBase(kind);
        } catch (err) {
          unavailable.set(kind, `the ${kind} base could not be made here: ${(err as Error).message.split('\n')[0]}`);
          continue;
        }
        await buildah.importBase(base);
        bases.set(kind, base);
      }
    } catch (err) {
      await buildah.close();
      await fs.rm(workDir, { recursive: true, force: true });
      throw err;
    }
    return new ConformanceRun(workDir, buildah, bases, unavailable, loadGlobalKnown(), options);
  }

  async runCase(c: Case): Promise<CaseResult> {
    const started = Date.now();
    const result = (r: Omit<CaseResult, 'name' | 'ms' | 'phases'>): CaseResult => ({ name: c.name, ms: Date.now() - started, phases, ...r });
    const phases: Record<string, number> = {};
    for (const kind of basesOf(c)) {
      const why = this.unavailable.get(kind);
      if (why) return result({ status: 'skipped', differences: [], stale: [], skipReason: why });
    }

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
          bases: [...this.bases.values()], buildArgs, target: c.spec.target,
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
        timed('buildah unpack', snapshot(buildahOci, path.join(dir, 'buildah-bundle'))),
        timed('lading unpack', snapshot(ladingOci, path.join(dir, 'lading-bundle'))),
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

  async close(): Promise<void> {
    await this.buildah.close();
    if (!this.options.keep) await fs.rm(this.workDir, { recursive: true, force: true });
    else this.options.log?.(`kept ${this.workDir}`);
  }
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
