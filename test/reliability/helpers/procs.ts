/**
 * The real CLI (bin/lading, from dist/) as a child process we can kill, measure and wait for,
 * plus small registry API checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../../helpers/busybox.ts';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface Running {
  child: ChildProcess;
  done: Promise<Finished>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'lading'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return { child, done };
}

export function runCliToEnd(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  return startCli(args, env).done;
}

/** Peak resident memory (VmHWM, KiB) and open descriptors of a live process, or undefined once gone. */
export function sample(pid: number): { hwmKiB: number; fds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { hwmKiB: hwm, fds };
  } catch {
    return undefined;
  }
}

/** Poll a process until it exits; returns the highest VmHWM and fd count seen. */
export function watchProcess(pid: number, everyMs = 25): { stop(): { hwmKiB: number; fds: number } } {
  let hwmKiB = 0;
  let fds = 0;
  const timer = setInterval(() => {
    const s = sample(pid);
    if (!s) return;
    hwmKiB = Math.max(hwmKiB, s.hwmKiB);
    fds = Math.max(fds, s.fds);
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { hwmKiB, fds };
    },
  };
}

/**
 * Every tag of every repository on a registry (from its catalog): its manifest and every blob it
 * names must be there. Returns the tags and the problems found (empty when every tag is whole).
 */
export async function brokenTags(registryUrl: string): Promise<{ tags: string[]; problems: string[] }> {
  const catalog = (await (await fetch(`${registryUrl}/v2/_catalog`)).json()) as { repositories: string[] | null };
  const all = { tags: [] as string[], problems: [] as string[] };
  for (const repository of catalog.repositories ?? []) {
    const r = await repositoryTags(registryUrl, repository);
    all.tags.push(...r.tags.map((t) => `${repository}:${t}`));
    all.problems.push(...r.problems.map((p) => `${repository}:${p}`));
  }
  return all;
}

interface ManifestDoc {
  config?: { digest: string };
  layers?: { digest: string }[];
  manifests?: { digest: string }[];
}

/** Every blob of a manifest, and every manifest of an index (a pushed build with attestations tags an index). */
async function checkManifest(registryUrl: string, repository: string, tag: string, doc: ManifestDoc, accept: string, problems: string[]): Promise<void> {
  for (const d of [doc.config, ...(doc.layers ?? [])]) {
    if (!d) continue;
    const blob = await fetch(`${registryUrl}/v2/${repository}/blobs/${d.digest}`, { method: 'HEAD' });
    if (blob.status !== 200) problems.push(`${tag}: blob ${d.digest} answers ${blob.status}`);
  }
  for (const child of doc.manifests ?? []) {
    const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${child.digest}`, { headers: { accept: `${accept}, application/vnd.in-toto+json` } });
    if (res.status !== 200) {
      problems.push(`${tag}: manifest ${child.digest} answers ${res.status}`);
      continue;
    }
    await checkManifest(registryUrl, repository, tag, (await res.json()) as ManifestDoc, accept, problems);
  }
}

async function repositoryTags(registryUrl: string, repository: string): Promise<{ tags: string[]; problems: string[] }> {
  const problems: string[] = [];
  const list = await fetch(`${registryUrl}/v2/${repository}/tags/list`);
  if (list.status === 404) return { tags: [], problems };
  const tags = ((await list.json()) as { tags: string[] | null }).tags ?? [];
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json';
  for (const tag of tags) {
    const res = await fetch(`${registryUrl}/v2/${repository}/manifests/${tag}`, { headers: { accept } });
    if (res.status !== 200) {
      problems.push(`${tag}: manifest answers ${res.status}`);
      continue;
    }
    await checkManifest(registryUrl, repository, tag, (await res.json()) as ManifestDoc, accept, problems);
  }
  return { tags, problems };
}

/** Files anywhere in `root` whose names say they are temporary (`*.tmp`, `*.part`). */
export async function temporaries(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (path.relative(root, p) === 'tmp') {
          for (const n of await fs.readdir(p)) out.push(path.join('tmp', n));
          continue;
        }
        await walk(p);
      } else if (/\.(tmp|part)$/.test(e.name)) out.push(path.relative(root, p));
    }
  };
  await walk(root);
  return out;
}
