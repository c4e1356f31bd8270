// Control flow between the job modules. Not client errors: nothing here is
// ever answered over HTTP, so these stay out of the catalogue in errors.ts.

/** The file was deleted while it was being processed: stop and remove what was written for it. */
export class FileGone extends Error {}

/** Stop without recording anything: the marker keeps the work for a later start or rescan. */
export class LeftPending extends Error {}

/**
 * How a closing service tells its parts to stop. `closing` fires when close()
 * begins: start nothing new. `stop` fires when the grace is over: abandon
 * what runs (it stays pending).
 */
export interface StopSignals {
  closing: AbortSignal;
  stop: AbortSignal;
}
