/**
 * Runs one library build in this process and prints a JSON line with its outcome and the peak
 * resident memory of the process (process.resourceUsage().maxRSS), so tests can bound memory.
 * Usage: node --import tsx build-child.ts '<BuildOptions as JSON>'
 */
import { build, isLadingError } from '../../../src/index.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as Parameters<typeof build>[0];
let outcome: Record<string, unknown>;
try {
  const result = await build(options);
  outcome = { ok: true, digest: result.digest };
} catch (err) {
  outcome = { ok: false, lading: isLadingError(err), code: isLadingError(err) ? err.code : undefined, message: (err as Error).message };
}
outcome.maxRssKiB = process.resourceUsage().maxRSS;
process.stdout.write(`${JSON.stringify(outcome)}\n`);
