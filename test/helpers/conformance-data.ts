/**
 * Where the conformance data lives: ../shared/conformance beside the checkout (read-only), or
 * LADING_CONFORMANCE_DIR when a checkout stands elsewhere.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const CONFORMANCE_DIR = process.env.LADING_CONFORMANCE_DIR
  ? path.resolve(process.env.LADING_CONFORMANCE_DIR)
  : path.join(repoRoot, '..', 'shared', 'conformance');
