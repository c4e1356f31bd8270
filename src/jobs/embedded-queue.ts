// The embedded FileQueue: a bounded in-memory list fed by commits and by
// periodic listings of the marker prefix (the outbox written at commit), so
// work left by a full queue, a shutdown or a crash is found again.
//
// Memory: at most queueMax file refs wait (a few hundred bytes each); past
// that, work stays pending in storage until a rescan. At most maxActive files
// are handled at once.

import type { Storage } from '../storage/storage.ts';
import type { CoreLog } from '../core/ingest.ts';
import { markerRoot, parseMarkerKey } from '../core/jobs.ts';
import type { FileHandler, FileQueue, FileRef, QueueHandlers, QueueStats } from './queue.ts';

export interface EmbeddedQueueOptions {
  storage: Storage;
  keyPrefix: string;
  log: CoreLog;
  /** Refs held in memory at most. */
  queueMax: number;
  /** Files handled at once at most. */
  maxActive: number;
  /** Interval between marker listings. */
  rescanMs: number;
}

export class EmbeddedQueue implements FileQueue {
  readonly #opts: EmbeddedQueueOptions;
  #handler: FileHandler | undefined;
  #queue: FileRef[] = [];
  /** tenant/id of every file queued or being handled: never taken twice. */
  #known = new Set<string>();
  #active = 0;
  #overflowed = false;
  #deferred = 0;
  #stopped = false;
  #inflight = new Set<Promise<void>>();
  #scanning: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: EmbeddedQueueOptions) {
    this.#opts = opts;
  }

  async start(handlers: QueueHandlers): Promise<void> {
    this.#handler = handlers.file;
    void this.rescan();
    this.#timer = setInterval(() => void this.rescan(), this.#opts.rescanMs).unref();
  }

  add(refs: readonly FileRef[]): void {
    for (const ref of refs) this.#offer(ref);
    this.#pump();
  }

  /** List the marker prefix and queue what is not already in hand. Single-flight. */
  rescan(): Promise<void> {
    this.#scanning ??= this.#scan()
      .catch((err: unknown) => this.#opts.log.warn({ err }, 'job rescan failed; retrying at the next interval'))
      .finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const ref of this.#queue) this.#known.delete(keyOf(ref));
    this.#queue = [];
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
  }

  stats(): QueueStats {
    return { queueDepth: this.#queue.length, activeFiles: this.#active, overflowed: this.#overflowed, deferred: this.#deferred };
  }

  async #scan(): Promise<void> {
    const { storage, keyPrefix } = this.#opts;
    const prefix = markerRoot(keyPrefix);
    let startAfter: string | undefined;
    this.#overflowed = false;
    while (!this.#stopped) {
      const page = await storage.list({ prefix, startAfter, limit: 1000 });
      for (const o of page.objects) {
        const ref = parseMarkerKey(keyPrefix, o.key);
        if (ref && !this.#offer({ ...ref, markedAt: o.lastModified })) {
          this.#pump();
          return; // queue full: #overflowed makes the pump rescan once it drains
        }
      }
      this.#pump();
      if (!page.truncated || page.objects.length === 0) return;
      startAfter = page.objects.at(-1)!.key;
    }
  }

  /** Queue a file unless it is in hand already. False when the queue is full (the work stays in storage). */
  #offer(ref: FileRef): boolean {
    if (this.#stopped) return false;
    const k = keyOf(ref);
    if (this.#known.has(k)) return true;
    if (this.#queue.length >= this.#opts.queueMax) {
      if (!this.#overflowed) this.#opts.log.warn({ queueMax: this.#opts.queueMax }, 'job queue full; new work stays pending in storage');
      this.#overflowed = true;
      this.#deferred++;
      return false;
    }
    this.#known.add(k);
    this.#queue.push(ref);
    return true;
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler) return; // not started: what is queued waits for start()
    while (!this.#stopped && this.#active < this.#opts.maxActive && this.#queue.length > 0) {
      const ref = this.#queue.shift()!;
      this.#active++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.#active--;
        this.#pump();
      };
      const work = handler(ref, release)
        .catch((err: unknown) => this.#opts.log.error({ err, fileId: ref.id }, 'file processing failed; the marker stays for a later attempt'))
        .finally(() => {
          release();
          this.#known.delete(keyOf(ref));
          this.#inflight.delete(work);
        });
      this.#inflight.add(work);
    }
    if (this.#overflowed && this.#queue.length === 0 && !this.#stopped) void this.rescan();
  }
}

function keyOf(ref: FileRef): string {
  return `${ref.tenant}/${ref.id}`;
}
