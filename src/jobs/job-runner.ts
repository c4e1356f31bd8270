// A file's jobs, from pending to done or failed: every state change is saved
// in the manifest before the work it announces, so a crash mid-job is counted
// as an attempt and a job that keeps crashing the process ends failed after
// maxAttempts. Transient failures are retried with backoff; the rest fail at once.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.ts';
import type { ErrorCode, ErrorData } from '../errors.ts';
import type { CoreLog } from '../core/ingest.ts';
import { jobCatalogue, type JobSpec } from '../core/jobs.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest } from '../core/manifest.ts';
import type { TaskResult } from '../../workers/tasks.ts';
import { LeftPending, type StopSignals } from './control.ts';
import type { SaveManifest } from './manifest-save.ts';
import type { JobPool } from './pool.ts';
import { buildTask, toVariant } from './tasks.ts';

/** Errors worth another attempt; the rest (bad image, missing original) fail at once. */
export const TRANSIENT: ReadonlySet<string> = new Set<ErrorCode>(['JOB_TIMEOUT', 'STORAGE_UNAVAILABLE', 'INTERNAL']);
/** Retry backoff: 1 s doubling per attempt, capped here. */
const MAX_BACKOFF_MS = 30_000;

export class JobRunner {
  readonly #config: Readonly<Config>;
  readonly #pool: JobPool;
  readonly #signals: StopSignals;
  readonly #catalogue: ReadonlyMap<string, JobSpec>;
  #completed = 0;
  #failed = 0;

  constructor(config: Readonly<Config>, pool: JobPool, signals: StopSignals) {
    this.#config = config;
    this.#pool = pool;
    this.#signals = signals;
    this.#catalogue = jobCatalogue(config);
  }

  /** Jobs done since start. */
  get completed(): number {
    return this.#completed;
  }

  /** Jobs failed since start. */
  get failed(): number {
    return this.#failed;
  }

  /** Run every unfinished job of `m`, saving each state change through `save`. */
  async runAll(m: Manifest, save: SaveManifest, log: CoreLog): Promise<void> {
    const { maxAttempts } = this.#config.jobs;
    const now = () => new Date().toISOString();
    const runnable: string[] = [];
    let changed = false;
    for (const [name, rec] of Object.entries(m.jobs ?? {})) {
      if (rec.state !== 'pending' && rec.state !== 'running') continue;
      if (rec.attempts >= maxAttempts) {
        // Still unfinished after its last attempt: the process died or stopped during every one.
        m.jobs![name] = { ...rec, state: 'failed', updatedAt: now(), error: rec.error ?? { code: 'INTERNAL', message: `gave up after ${rec.attempts} attempts that never finished` } };
        this.#failed++;
        changed = true;
        continue;
      }
      m.jobs![name] = { ...rec, state: 'running', attempts: rec.attempts + 1, updatedAt: now() };
      changed = true;
      runnable.push(name);
    }
    if (changed) await save();
    // A file has at most one job per catalogue entry: this fan-out is small and bounded.
    await Promise.all(runnable.map((name) => this.#runJob(m, name, save, log)));
  }

  async #runJob(m: Manifest, name: string, save: SaveManifest, log: CoreLog): Promise<void> {
    const spec = this.#catalogue.get(name);
    const jobs = m.jobs!;
    for (;;) {
      const rec = jobs[name]!;
      const started = performance.now();
      const result: TaskResult = spec ? await this.#runTask(spec, m) : { ok: false, error: { code: 'UNKNOWN_JOB', message: `job ${name} is no longer configured` } };
      const durationMs = Math.round(performance.now() - started);
      const updatedAt = new Date().toISOString();
      if (result.ok && spec) {
        const key = fileKeys(this.#config.keyPrefix, m.tenant, m.id).variant(name);
        jobs[name] = { state: 'done', attempts: rec.attempts, updatedAt, output: toVariant(spec, key, result.output) };
        this.#completed++;
        log.info({ job: name, durationMs, outcome: 'done', size: result.output.size }, 'job done');
        await save();
        return;
      }
      const error: ErrorData = result.ok ? { code: 'INTERNAL', message: 'no job spec' } : result.error;
      if (TRANSIENT.has(error.code) && rec.attempts < this.#config.jobs.maxAttempts) {
        log.warn({ job: name, durationMs, attempt: rec.attempts, error }, 'job attempt failed; retrying');
        jobs[name] = { ...rec, attempts: rec.attempts + 1, updatedAt, error };
        await save();
        await sleep(Math.min(1000 * 2 ** (rec.attempts - 1), MAX_BACKOFF_MS), undefined, { signal: this.#signals.stop }).catch(() => {
          throw new LeftPending('closing');
        });
        continue;
      }
      jobs[name] = { state: 'failed', attempts: rec.attempts, updatedAt, error };
      this.#failed++;
      log.warn({ job: name, durationMs, outcome: 'failed', error }, 'job failed');
      await save();
      return;
    }
  }

  /** Jobs done and failed, counted by a caller that runs jobs one at a time (the BullMQ steps). */
  count(outcome: 'done' | 'failed'): void {
    if (outcome === 'done') this.#completed++;
    else this.#failed++;
  }

  /** One attempt of one job on the pool, with no retry and no manifest write: the BullMQ steps run jobs this way. */
  runTask(spec: JobSpec, m: Manifest): Promise<TaskResult> {
    return this.#runTask(spec, m);
  }

  async #runTask(spec: JobSpec, m: Manifest): Promise<TaskResult> {
    if (this.#signals.closing.aborted) throw new LeftPending('closing');
    const { maxInputBytes } = this.#config.jobs.image;
    if (spec.kind === 'image' && m.size > maxInputBytes) {
      return { ok: false, error: { code: 'IMAGE_TOO_LARGE', message: `The original is ${m.size} bytes, over the ${maxInputBytes} byte limit of image jobs` } };
    }
    return this.#pool.run(buildTask(spec, m, this.#config));
  }
}
