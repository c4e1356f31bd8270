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
  /** Names of the file's unfinished jobs, when the caller knows them (a commit hands its manifest). */
  jobs?: readonly string[];
}

/**
 * Processes one file. `releaseSlot` frees the file's processing slot before
 * the handler ends (the jobs are done, only the webhook is left), so slow
 * receivers do not hold job capacity; an implementation may treat it as a
 * no-op.
 */
export type FileHandler = (ref: FileRef, releaseSlot: () => void) => Promise<void>;

/**
 * What a queue that schedules each job of a file apart (BullMQ) runs: one job
 * step, one webhook step, and the reading of a marker for reconcile
 * (file-steps.ts implements them).
 */
export interface FileStepHandlers {
  pending(ref: FileRef): Promise<{ jobs: string[]; webhook: boolean } | null>;
  runJob(ref: FileRef, name: string): Promise<'open' | 'webhook' | 'finished'>;
  deliver(ref: FileRef): Promise<void>;
}

/** The service offers both granularities; each queue takes the one it schedules. */
export interface QueueHandlers {
  /** All of a file's work in one call (the embedded queue). */
  file: FileHandler;
  /** One step at a time (BullMQ). */
  steps: FileStepHandlers;
}

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
  start(handlers: QueueHandlers): Promise<void>;
  add(refs: readonly FileRef[]): void;
  /** Look for pending work in storage that is not in hand. Never rejects. */
  rescan(): Promise<void>;
  /** Take nothing new: drop what waits in memory (it keeps its marker) and stop rescanning. */
  stop(): void;
  /** Resolves once every handler in flight has settled. */
  idle(): Promise<void>;
  stats(): QueueStats;
  /** Release connections, after idle(). */
  close?(): Promise<void>;
  /** Jobs per queue and state in a shared engine, for /metrics. */
  counts?(): Promise<readonly { queue: string; state: string; count: number }[]>;
}
