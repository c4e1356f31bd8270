// The worker-thread pool the jobs run on: piscina with a fixed thread count,
// libvips configured before any worker loads it, and a hard kill for a task
// stuck past its time limit.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Piscina } from 'piscina';
import type { JobsConfig } from '../config.ts';
import type { TaskResult } from '../../workers/tasks.ts';
import { LeftPending, type StopSignals } from './control.ts';
import type { WorkerTask } from './tasks.ts';

/** The pool kills a worker this long after a job's own time limit passed (backstop for a stuck native call). */
const HARD_KILL_GRACE_MS = 5_000;
/** Bound on pool shutdown: a thread stuck in native code must not hold shutdown hostage. */
const DESTROY_BOUND_MS = 5_000;

export class JobPool {
  readonly #pool: Piscina | undefined;
  readonly #timeoutMs: number;
  readonly #signals: StopSignals;
  /** libvips threads per image job, as sharp reports it once loaded (0 while jobs are off). */
  readonly sharpConcurrency: number;
  #running = 0;

  private constructor(pool: Piscina | undefined, sharpConcurrency: number, timeoutMs: number, signals: StopSignals) {
    this.#pool = pool;
    this.sharpConcurrency = sharpConcurrency;
    this.#timeoutMs = timeoutMs;
    this.#signals = signals;
  }

  /** A pool of `poolSize` threads; with 0, a pool that runs nothing (every task is left pending). */
  static async start(jobs: Readonly<JobsConfig>, signals: StopSignals): Promise<JobPool> {
    if (jobs.poolSize === 0) return new JobPool(undefined, 0, jobs.timeoutMs, signals);
    // libvips settings are process-wide, so the workers inherit them. Loaded only
    // when jobs run: libvips costs ~15 MiB of RSS a jobless instance need not pay.
    // piscina likewise (docs/performance.md, "Idle memory").
    const [{ default: sharp }, { Piscina }] = await Promise.all([import('sharp'), import('piscina')]);
    sharp.concurrency(jobs.image.sharpConcurrency);
    sharp.cache(false);
    const pool = new Piscina({ minThreads: jobs.poolSize, maxThreads: jobs.poolSize, idleTimeout: 60_000 });
    return new JobPool(pool, sharp.concurrency(), jobs.timeoutMs, signals);
  }

  /** Tasks waiting inside the pool for a free thread. */
  get queueSize(): number {
    return this.#pool?.queueSize ?? 0;
  }

  /** Tasks running on worker threads now. */
  get running(): number {
    return this.#running;
  }

  /** Run one task. Throws LeftPending once the service is closing; every other failure is a TaskResult. */
  async run({ filename, task }: WorkerTask): Promise<TaskResult> {
    const pool = this.#pool;
    if (!pool || this.#signals.closing.aborted) throw new LeftPending('closing');
    const hardLimit = AbortSignal.timeout(this.#timeoutMs + HARD_KILL_GRACE_MS);
    this.#running++;
    try {
      return (await pool.run(task, { filename, signal: AbortSignal.any([hardLimit, this.#signals.stop]) })) as TaskResult;
    } catch (err) {
      if (this.#signals.closing.aborted) throw new LeftPending('closing');
      if (hardLimit.aborted) return { ok: false, error: { code: 'JOB_TIMEOUT', message: 'The job exceeded its time limit and its worker was stopped' } };
      return { ok: false, error: { code: 'INTERNAL', message: `worker failed: ${err instanceof Error ? err.message : String(err)}` } };
    } finally {
      this.#running--;
    }
  }

  async destroy(): Promise<void> {
    await Promise.race([this.#pool?.destroy(), sleep(DESTROY_BOUND_MS, undefined, { ref: false })]);
  }
}
