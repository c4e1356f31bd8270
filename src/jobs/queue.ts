// The queue of files waiting to be processed, as a port: the job service
// hands it committed files and a handler, and the queue decides when (and in
// which process) the handler runs. The embedded implementation
// (embedded-queue.ts) keeps a bounded list in memory and recovers from the
// marker prefix; a shared engine (Redis/BullMQ) can stand behind the same
// interface.
//
// Contract for every implementation:
// - add() never throws and never blocks an upload: work that does not fit
//   stays pending in storage (its marker) and a later rescan finds it.
// - One file is never handed to two handlers of this queue at once.
// - stop() ends intake; idle() resolves when every handler in flight settled.

export interface FileRef {
  tenant: string;
  id: string;
  /** When the marker was written, if known (from a listing). */
  markedAt?: Date;
}

/**
 * Processes one file. `releaseSlot` frees the file's processing slot before
 * the handler ends (the jobs are done, only the webhook is left), so slow
 * receivers do not hold job capacity; an implementation may treat it as a
 * no-op.
 */
export type FileHandler = (ref: FileRef, releaseSlot: () => void) => Promise<void>;

export interface QueueStats {
  /** Files waiting in memory for a processing slot. */
  queueDepth: number;
  /** Files being handled now. */
  activeFiles: number;
  /** Work left in storage because the queue was full; a rescan picks it up. */
  overflowed: boolean;
  /** Files deferred that way since start (cumulative). */
  deferred: number;
}

export interface FileQueue {
  /** Begin handing files to `handler`, and recover the pending work from storage. */
  start(handler: FileHandler): Promise<void>;
  add(refs: readonly FileRef[]): void;
  /** Look for pending work in storage that is not in hand. Never rejects. */
  rescan(): Promise<void>;
  /** Take nothing new: drop what waits in memory (it keeps its marker) and stop rescanning. */
  stop(): void;
  /** Resolves once every handler in flight has settled. */
  idle(): Promise<void>;
  stats(): QueueStats;
}
