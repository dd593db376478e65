/**
 * buildah as the reference builder: one private storage (vfs) per conformance run, shared by all
 * its cases so bases are imported once and buildah's own layer cache works across cases. Builds run
 * with chroot isolation as root; never `--isolation oci`, which would create a network bridge and
 * firewall rules on the host.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { BaseImage } from './bases.ts';
import { mustRun, runProc, type ProcResult } from './proc.ts';

export interface BuildahBuild {
  /** Dockerfile to build (may lie outside the context). */
  dockerfile: string;
  context: string;
  tag: string;
  buildArgs: Record<string, string>;
  target?: string;
}

export interface BuildahImage {
  /** The Docker-format config (`.config` of `buildah inspect`'s Docker view): keeps HEALTHCHECK, ONBUILD and SHELL, which buildah's OCI view drops. */
  config: Record<string, unknown>;
}

export class BuildahSession {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly signal?: AbortSignal,
  ) {}

  /** Storage, run state and configuration under `dir` (created), isolated from the host's. */
  static async open(dir: string, signal?: AbortSignal): Promise<BuildahSession> {
    const root = path.join(dir, 'root');
    const runroot = path.join(dir, 'runroot');
    await fs.mkdir(root, { recursive: true });
    await fs.mkdir(runroot, { recursive: true });
    const storageConf = path.join(dir, 'storage.conf');
    await fs.writeFile(storageConf, `[storage]\ndriver = "vfs"\nrunroot = "${runroot}"\ngraphroot = "${root}"\n`);
    const registriesConf = path.join(dir, 'registries.conf');
    // Short names resolve to docker.io, where the bases are tagged; --pull=never keeps it local.
    await fs.writeFile(registriesConf, 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n');
    const env = {
      ...process.env,
      CONTAINERS_STORAGE_CONF: storageConf,
      CONTAINERS_REGISTRIES_CONF: registriesConf,
      BUILDAH_ISOLATION: 'chroot',
      BUILDAH_LAYERS: 'true',
      // buildah's scratch files (it defaults to /var/tmp) stay inside the run's folder.
      TMPDIR: path.join(dir, 'tmp'),
    };
    await fs.mkdir(env.TMPDIR, { recursive: true });
    return new BuildahSession(dir, env, signal);
  }

  private globalArgs(): string[] {
    return ['--root', path.join(this.dir, 'root'), '--runroot', path.join(this.dir, 'runroot'), '--storage-driver', 'vfs'];
  }

  /** `stoppable: false` for cleaning up, which an interrupted run still has to do. */
  private buildah(args: string[], stoppable = true): Promise<ProcResult> {
    return runProc('buildah', [...this.globalArgs(), ...args], { env: this.env, signal: stoppable ? this.signal : undefined });
  }

  private async must(args: string[]): Promise<string> {
    const r = await this.buildah(args);
    if (r.code !== 0) throw new Error(`buildah ${args.join(' ')} exited with ${r.code}:\n${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Copy a base from its OCI layout into the storage under each of its Docker Hub names. */
  async importBase(base: BaseImage): Promise<void> {
    const [first, ...rest] = base.names.map((n) => qualify(n));
    const storage = `containers-storage:[vfs@${path.join(this.dir, 'root')}+${path.join(this.dir, 'runroot')}]`;
    await mustRun('skopeo', ['copy', '-q', `oci:${base.layoutDir}:latest`, `${storage}${first}`], { env: this.env, signal: this.signal });
    for (const name of rest) await this.must(['tag', first!, name]);
  }

  /** Build; a failure is returned (not thrown) with what buildah printed. */
  async build(b: BuildahBuild): Promise<{ ok: true } | { ok: false; message: string }> {
    const args = [
      'build', '--pull=never', '--layers', '--isolation', 'chroot', '--timestamp', '0', '--identity-label=false',
      '--format', 'docker', '-f', b.dockerfile, '-t', b.tag,
    ];
    for (const [k, v] of Object.entries(b.buildArgs)) args.push('--build-arg', `${k}=${v}`);
    if (b.target) args.push('--target', b.target);
    args.push(b.context);
    const r = await this.buildah(args);
    if (r.code === 0) return { ok: true };
    const how = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
    return { ok: false, message: `${lastLines(`${r.stdout}\n${r.stderr}`, 15)}\n(buildah build: ${how})` };
  }

  async inspect(tag: string): Promise<BuildahImage> {
    const info = JSON.parse(await this.must(['inspect', '--type', 'image', tag])) as { Docker?: { config?: Record<string, unknown> } };
    return { config: info.Docker?.config ?? {} };
  }

  /** Write the image to an OCI layout folder under the tag `case`. */
  async exportOci(tag: string, dest: string): Promise<void> {
    await this.must(['push', '-q', tag, `oci:${dest}:case`]);
  }

  /** Remove every container and image, then the storage itself. */
  async close(): Promise<void> {
    await this.buildah(['rm', '--all'], false);
    await this.buildah(['rmi', '--all', '--force'], false);
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** `busybox` → `docker.io/library/busybox:latest`, as buildah resolves a short name. */
export function qualify(name: string): string {
  const withTag = /:[^/]+$/.test(name) ? name : `${name}:latest`;
  const firstPart = withTag.split('/')[0]!;
  if (withTag.includes('/') && (firstPart.includes('.') || firstPart.includes(':') || firstPart === 'localhost')) return withTag;
  return withTag.includes('/') ? `docker.io/${withTag}` : `docker.io/library/${withTag}`;
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
