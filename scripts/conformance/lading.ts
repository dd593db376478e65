/** lading as users run it: the compiled CLI (`bin/lading`, from `npm run build`), writing an OCI layout folder. */
import path from 'node:path';
import { REPO_ROOT } from '../../test/helpers/busybox.ts';
import type { BaseImage } from './bases.ts';
import { runProc } from './proc.ts';

export interface LadingBuild {
  dockerfile: string;
  context: string;
  /** OCI layout folder to write, tagged `case`. */
  dest: string;
  cacheDir: string;
  bases: BaseImage[];
  buildArgs: Record<string, string>;
  target?: string;
  signal?: AbortSignal;
}

export type LadingOutcome = { ok: true } | { ok: false; message: string; runUnsupported: boolean };

export async function ladingBuild(b: LadingBuild): Promise<LadingOutcome> {
  const args = [path.join(REPO_ROOT, 'bin', 'lading'), 'build', '-q', '-f', b.dockerfile, '-o', `type=oci,dest=${b.dest}`, '-t', 'case', '--cache-dir', b.cacheDir];
  for (const base of b.bases) {
    for (const name of base.names) args.push('--build-context', `${name}=oci-layout://${base.layoutDir}:latest`);
  }
  for (const [k, v] of Object.entries(b.buildArgs)) args.push('--build-arg', `${k}=${v}`);
  if (b.target) args.push('--target', b.target);
  args.push(b.context);
  // SOURCE_DATE_EPOCH unset: lading's default clamp (0) matches buildah's --timestamp 0.
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.SOURCE_DATE_EPOCH;
  const r = await runProc(process.execPath, args, { env, signal: b.signal });
  if (r.code === 0) return { ok: true };
  const message = (r.stderr || r.stdout).trim();
  return { ok: false, message, runUnsupported: /has a RUN step but no sandbox/.test(message) };
}
