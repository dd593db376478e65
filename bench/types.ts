/** One line of `npm run bench`: our number, the peer's from the same run, and the target. */
export interface BenchRow {
  name: string;
  ours: number;
  unit: 's' | 'ms' | 'MB/s' | 'MB' | 'x';
  peer?: { name: string; value: number };
  /** The target in words, e.g. "≤ skopeo". */
  target?: string;
  /** Whether the target was met, when there is one. */
  met?: boolean;
}

/** A benchmark module under bench/ named `*.bench.ts` default-exports one of these. */
export type Bench = () => Promise<BenchRow[]>;
