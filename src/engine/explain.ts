/**
 * `--explain`: why a step missed the cache. Every time a step runs, what went into its key is
 * remembered under the step's "slot" (this Dockerfile, this stage, this position, this platform).
 * On the next miss the two are compared and the difference named: the instruction, a build arg,
 * a file, or an earlier step / the base image.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '../image/digest.ts';

export interface SlotState {
  key: string;
  parent: string;
  /** What the parent key stands for when it is a base image (its digest), for messages. */
  base?: string;
  step: string;
  /** Input lines by name (file path, or source identity) → their description. */
  inputs: Record<string, string>;
}

export function slotId(parts: { contextDir: string; dockerfile: string; stage: string; position: number; platform: string }): string {
  return sha256(JSON.stringify(parts)).slice(7, 39);
}

/** Turn describe lines (`source\trel\t...\tcontent`) into a name → description map. */
export function inputsOf(describe: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of describe) {
    const parts = line.split('\t');
    if (parts.length >= 3) out[parts[1] || parts[0]!] = parts.slice(2).join('\t');
    else out[line] = line;
  }
  return out;
}

export class ExplainStore {
  private readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'explain');
  }

  async load(slot: string): Promise<SlotState | undefined> {
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, `${slot}.json`), 'utf8')) as SlotState;
    } catch {
      return undefined;
    }
  }

  async save(slot: string, state: SlotState): Promise<void> {
    const file = path.join(this.dir, `${slot}.json`);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await fs.writeFile(tmp, JSON.stringify(state));
      await fs.rename(tmp, file);
    } catch {
      // Explanations are a convenience: never fail a build over them.
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

/** Name what differs between the state that made the last layer here and this one. */
export function explainMiss(before: SlotState | undefined, now: SlotState): string {
  if (!before) return 'no earlier build of this step is known';
  if (before.key === now.key) return 'the cached layer was removed (pruned or repaired)';
  const reasons: string[] = [];
  if (before.step !== now.step) reasons.push(describeStepChange(before.step, now.step));
  const changedFiles: string[] = [];
  for (const name of new Set([...Object.keys(before.inputs), ...Object.keys(now.inputs)])) {
    const a = before.inputs[name];
    const b = now.inputs[name];
    if (a === b) continue;
    changedFiles.push(a === undefined ? `${name} (added)` : b === undefined ? `${name} (removed)` : `${name} (changed)`);
  }
  if (changedFiles.length > 0) {
    const shown = changedFiles.slice(0, 5).join(', ');
    reasons.push(`input ${shown}${changedFiles.length > 5 ? ` and ${changedFiles.length - 5} more` : ''}`);
  }
  if (before.parent !== now.parent) {
    if (now.base !== undefined && before.base !== now.base) reasons.push(`the base image changed (${before.base ?? 'unknown'} → ${now.base})`);
    else if (reasons.length === 0) reasons.push('an earlier step changed');
  }
  return reasons.length > 0 ? reasons.join('; ') : 'the layer settings changed (compression, level or SOURCE_DATE_EPOCH)';
}

function describeStepChange(before: string, now: string): string {
  let a: Record<string, unknown>;
  let b: Record<string, unknown>;
  try {
    a = JSON.parse(before) as Record<string, unknown>;
    b = JSON.parse(now) as Record<string, unknown>;
  } catch {
    return 'the instruction changed';
  }
  const argsA = (a.args ?? {}) as Record<string, string>;
  const argsB = (b.args ?? {}) as Record<string, string>;
  const changedArgs = [...new Set([...Object.keys(argsA), ...Object.keys(argsB)])].filter((k) => argsA[k] !== argsB[k]);
  // RUN keys carry build args inside their environment.
  const envA = new Set((a.env as string[] | undefined) ?? []);
  const envB = new Set((b.env as string[] | undefined) ?? []);
  const envChanged = [...envB].filter((e) => !envA.has(e)).map((e) => e.slice(0, e.indexOf('=')));
  const fields = Object.keys({ ...a, ...b }).filter((k) => k !== 'args' && k !== 'env' && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  const parts: string[] = [];
  if (fields.length > 0) parts.push(`the instruction changed (${fields.join(', ')})`);
  const names = [...new Set([...changedArgs, ...envChanged])];
  if (names.length > 0) parts.push(`build arg or environment ${names.join(', ')} changed`);
  return parts.length > 0 ? parts.join('; ') : 'the instruction changed';
}
