/**
 * Run by the rootless suite as an unprivileged user (runuser): builds an image from RUN steps on
 * the busybox base and prints what it did as JSON on stdout. The parent (root) unpacks and compares.
 *
 *   node --import tsx test/run/helpers/rootless-child.ts '{"work":..., "sandbox":..., ...}'
 */
import { detectSandbox, type SandboxKind, type SnapshotKind } from '../../../src/run/index.ts';
import { buildWithSteps } from './steps.ts';
import { loadBusybox } from './tree.ts';

interface Request {
  work: string;
  sandbox?: SandboxKind;
  snapshot?: SnapshotKind;
  steps?: string[];
  searchPath?: string;
  /** Only report what detectSandbox says. */
  detectOnly?: boolean;
}

const request = JSON.parse(process.argv[2] ?? '{}') as Request;

try {
  if (request.detectOnly) {
    const found = await detectSandbox(request.sandbox, { searchPath: request.searchPath });
    process.stdout.write(JSON.stringify({ ok: true, uid: process.getuid?.(), ...found }));
  } else {
    const base = await loadBusybox();
    const built = await buildWithSteps(base, request.work, request.sandbox!, request.snapshot!, request.steps ?? [], { searchPath: request.searchPath });
    process.stdout.write(
      JSON.stringify({
        ok: true,
        uid: process.getuid?.(),
        layout: built.layout,
        normalised: built.normalised,
        notes: built.results.map((r) => r.notes),
        sandbox: built.results[0]?.sandbox,
        snapshot: built.results[0]?.snapshot,
      }),
    );
  }
} catch (err) {
  const e = err as { code?: string; message?: string; details?: unknown; hint?: string };
  process.stdout.write(JSON.stringify({ ok: false, code: e.code, message: e.message, details: e.details, hint: e.hint }));
}
