/** What every progress mode implements: the CLI feeds it events, then an outcome or a failure. */
import type { BuildEvent } from '../../index.ts';
import type { Outcome } from './summary.ts';

export interface Renderer {
  onEvent(event: BuildEvent): void;
  /** The command succeeded: stop any live view and write the summary. */
  done(outcome: Outcome): void;
  /**
   * The command failed: stop any live view and leave the terminal as it was (cursor shown, live
   * lines erased). Returns true when the renderer reported the error itself (json mode), so the
   * CLI does not print it a second time.
   */
  fail(error: unknown, exitStatus: number): boolean;
}
