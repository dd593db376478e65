/** Library builds of small inline projects, for engine tests. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { build, type BuildOptions, type BuildResult, type BuildEvent } from '../../src/index.ts';
import { busyboxImage } from './busybox.ts';

export interface Project {
  dir: string;
  context: string;
  cache: string;
}

/** Write `files` (path → content; a `{ link }` makes a symlink) under a new context folder. */
export async function writeProject(root: string, files: Record<string, string | { link: string } | { mode: number; content: string }>): Promise<Project> {
  const context = path.join(root, 'ctx');
  await fs.mkdir(context, { recursive: true });
  for (const [name, value] of Object.entries(files)) {
    const p = path.join(context, name);
    await fs.mkdir(path.dirname(p), { recursive: true });
    if (typeof value === 'string') await fs.writeFile(p, value);
    else if ('link' in value) await fs.symlink(value.link, p);
    else {
      await fs.writeFile(p, value.content);
      await fs.chmod(p, value.mode);
    }
  }
  return { dir: root, context, cache: path.join(root, 'cache') };
}

export interface BuildRun extends BuildResult {
  events: BuildEvent[];
}

/** Build with the busybox test image available as `busybox`. */
export async function buildProject(project: Project, options: Partial<BuildOptions> = {}): Promise<BuildRun> {
  const bb = await busyboxImage();
  const events: BuildEvent[] = [];
  const result = await build({
    context: project.context,
    cacheDir: project.cache,
    buildContexts: { busybox: `oci-layout://${bb.layoutDir}:latest`, ...(options.buildContexts ?? {}) },
    ...options,
    onEvent: (e) => {
      events.push(e);
      options.onEvent?.(e);
    },
  });
  return { ...result, events };
}

export function stepsMade(run: BuildRun): string[] {
  return run.steps.filter((s) => !s.cached && s.layer).map((s) => s.text);
}

export function stepsCached(run: BuildRun): string[] {
  return run.steps.filter((s) => s.cached).map((s) => s.text);
}
