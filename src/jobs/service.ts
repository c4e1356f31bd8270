// The job service: committed files go into a FileQueue; for each, the job
// runner runs its jobs on the worker pool and records every state change in
// the file's manifest, the webhook is delivered, and the file's marker is
// removed once nothing is left.
//
// Durability: the marker written at commit is the outbox. Anything not
// finished when the process stops (queue overflow, shutdown past its grace, a
// crash, SIGKILL) still has its marker; the queue's start and rescans find it
// and the work is finished. Attempts are persisted before each run, so a job
// that crashes the process is retried at most maxAttempts times.
//
// Memory: see embedded-queue.ts (queueMax refs in memory); at most
// 2 × poolSize files are processed at once.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.ts';
import { isSluiceError } from '../errors.ts';
import { deleteFileObjects, readManifestVersion } from '../core/files.ts';
import type { CoreLog } from '../core/ingest.ts';
import { deleteMarker, hasUnfinishedJobs, needsMarker, type JobQueue } from '../core/jobs.ts';
import type { Manifest } from '../core/manifest.ts';
import { canWriteConditionally, type Storage } from '../storage/storage.ts';
import { FileGone, LeftPending, type StopSignals } from './control.ts';
import { WebhookDelivery } from './delivery.ts';
import type { BullmqQueue } from './bullmq-queue.ts';
import { EmbeddedQueue } from './embedded-queue.ts';
import { FileLeases } from './file-lease.ts';
import { FileSteps } from './file-steps.ts';
import { JobRunner } from './job-runner.ts';
import { manifestSaver } from './manifest-save.ts';
import { JobPool } from './pool.ts';
import type { FileQueue, FileRef } from './queue.ts';

export interface JobStats {
  /** Files waiting in memory for a processing slot. */
  queueDepth: number;
  /** Tasks waiting inside the pool for a free thread. */
  poolQueue: number;
  /** Tasks running on worker threads now. */
  running: number;
  /** Files being processed (jobs) or delivered (webhook). */
  activeFiles: number;
  delivering: number;
  /** Work left in storage because the memory queue was full; a rescan picks it up. */
  overflowed: boolean;
  /** Files deferred that way since start (cumulative). */
  deferred: number;
  poolSize: number;
  uvThreadpoolSize: number;
  sharpConcurrency: number;
  completed: number;
  failed: number;
}

export interface JobServiceDeps {
  config: Readonly<Config>;
  storage: Storage;
  log: CoreLog & { child(bindings: Record<string, unknown>): CoreLog };
  /** Where files wait for processing; absent: BullMQ with SLUICE_REDIS_URL, else the embedded queue. */
  queue?: FileQueue;
  /** Redis connection errors (sluice_redis_errors_total). */
  onRedisError?: () => void;
  /** The BullMQ queue class, which JobService.create loads only when SLUICE_REDIS_URL is set. */
  bullmq?: typeof BullmqQueue;
}

/** A marker without a manifest this old is debris of a commit that never finished. */
const ORPHAN_MARKER_MS = 10 * 60_000;
/** After the grace, abandoned work gets this long to notice the stop and settle. */
const SETTLE_BOUND_MS = 2_000;

export class JobService implements JobQueue {
  readonly #config: Readonly<Config>;
  readonly #storage: Storage;
  readonly #log: JobServiceDeps['log'];
  readonly #queue: FileQueue;
  readonly #closing = new AbortController();
  readonly #stop = new AbortController();
  readonly #signals: StopSignals = { closing: this.#closing.signal, stop: this.#stop.signal };
  readonly #delivery: WebhookDelivery;
  readonly #steps: FileSteps;
  /** False on an ingest node with Redis: it enqueues, workers run the jobs. */
  readonly #runsPool: boolean;
  #pool: JobPool | undefined;
  #runner: JobRunner | undefined;
  /**
   * With the embedded queue and several processes (--workers N), every process rescans the
   * same markers: a file is handled only under its lease (file-lease.ts). BullMQ's own job
   * locks do this with Redis; one process needs none.
   */
  readonly #leases: FileLeases | undefined;

  /**
   * The service for this config. bullmq and ioredis (~16 MiB of idle RSS, docs/performance.md)
   * are imported here, at start-up, only when SLUICE_REDIS_URL is set.
   */
  static async create(deps: JobServiceDeps): Promise<JobService> {
    if (!deps.config.redis || deps.queue || deps.bullmq) return new JobService(deps);
    const { BullmqQueue } = await import('./bullmq-queue.ts');
    return new JobService({ ...deps, bullmq: BullmqQueue });
  }

  constructor(deps: JobServiceDeps) {
    this.#config = deps.config;
    this.#storage = deps.storage;
    this.#log = deps.log;
    const { jobs, redis } = deps.config;
    this.#runsPool = deps.config.role !== 'ingest';
    this.#steps = new FileSteps({ config: deps.config, storage: deps.storage, runner: () => this.#runner, signals: this.#signals });
    const Bullmq = deps.bullmq;
    if (redis && !deps.queue && !Bullmq) throw new Error('JobService with SLUICE_REDIS_URL: build it with JobService.create');
    this.#queue = deps.queue ?? (redis && Bullmq ? new Bullmq({
      redis,
      storage: deps.storage,
      keyPrefix: deps.config.keyPrefix,
      log: deps.log,
      consume: this.#runsPool,
      concurrency: Math.max(1, jobs.poolSize * 2),
      maxAttempts: jobs.maxAttempts,
      webhook: jobs.webhook ? { maxAttempts: jobs.webhook.maxAttempts, backoffMs: jobs.webhook.backoffMs } : undefined,
      lockMs: redis.jobLockMs,
      rescanMs: jobs.rescanMs,
      ...(deps.onRedisError ? { onRedisError: deps.onRedisError } : {}),
    }) : new EmbeddedQueue({
      storage: deps.storage,
      keyPrefix: deps.config.keyPrefix,
      log: deps.log,
      queueMax: jobs.queueMax,
      maxActive: Math.max(1, jobs.poolSize * 2),
      rescanMs: jobs.rescanMs,
    }));
    this.#delivery = new WebhookDelivery(jobs.webhook, jobs.queueMax, this.#signals);
    const shared = !redis && !deps.queue && deps.config.ops.workers > 1;
    this.#leases = shared && canWriteConditionally(deps.storage) ? new FileLeases(deps.storage, deps.config.keyPrefix) : undefined;
  }

  async start(): Promise<void> {
    const { jobs } = this.#config;
    if (this.#runsPool) {
      this.#pool = await JobPool.start(jobs, this.#signals);
      this.#runner = new JobRunner(this.#config, this.#pool, this.#signals);
    }
    const queue = this.#config.redis ? 'bullmq' : 'embedded';
    this.#log.info(
      { jobs: { queue, pool: this.#runsPool, poolSize: jobs.poolSize, uvThreadpoolSize: jobs.uvThreadpoolSize, sharpConcurrency: this.#pool?.sharpConcurrency ?? 0, queueMax: jobs.queueMax, timeoutMs: jobs.timeoutMs, webhook: jobs.webhook !== undefined } },
      'job service started',
    );
    const stepLog = (ref: FileRef, job?: string) => this.#log.child({ fileId: ref.id, tenant: ref.tenant, ...(job ? { job } : {}) });
    await this.#queue.start({
      file: (ref, release) => this.#handle(ref, release),
      steps: {
        pending: (ref) => this.#steps.pending(ref),
        runJob: (ref, name) => this.#steps.runJob(ref, name, stepLog(ref, name)),
        deliver: (ref) => this.#steps.deliver(ref, stepLog(ref)),
      },
    });
  }

  /** BullMQ queue counts for /metrics; empty with the embedded queue. */
  async queueCounts(): Promise<readonly { queue: string; state: string; count: number }[]> {
    return (await this.#queue.counts?.()) ?? [];
  }

  /** Wait for running work up to graceMs, then stop; whatever is left stays pending for the next start. */
  async close(graceMs: number): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort(new LeftPending('closing'));
    this.#queue.stop();
    await Promise.race([this.#queue.idle(), sleep(graceMs, undefined, { ref: false })]);
    this.#stop.abort(new LeftPending('closing'));
    await this.#pool?.destroy();
    await Promise.race([this.#queue.idle(), sleep(SETTLE_BOUND_MS, undefined, { ref: false })]);
    await this.#queue.close?.();
  }

  stats(): JobStats {
    const q = this.#queue.stats();
    return {
      queueDepth: q.queueDepth,
      poolQueue: this.#pool?.queueSize ?? 0,
      running: this.#pool?.running ?? 0,
      activeFiles: q.activeFiles,
      delivering: this.#delivery.delivering,
      overflowed: q.overflowed,
      deferred: q.deferred,
      poolSize: this.#config.jobs.poolSize,
      uvThreadpoolSize: this.#config.jobs.uvThreadpoolSize,
      sharpConcurrency: this.#pool?.sharpConcurrency ?? 0,
      completed: this.#runner?.completed ?? 0,
      failed: this.#runner?.failed ?? 0,
    };
  }

  enqueue(files: readonly Manifest[]): void {
    this.#queue.add(
      files
        .filter((m) => needsMarker(m, this.#config))
        .map((m) => ({ tenant: m.tenant, id: m.id, jobs: Object.entries(m.jobs ?? {}).filter(([, j]) => j.state === 'pending').map(([n]) => n) })),
    );
  }

  /** Look for pending work in storage now, without waiting for the next interval. */
  rescan(): Promise<void> {
    return this.#queue.rescan();
  }

  async #handle(ref: FileRef, releaseSlot: () => void): Promise<void> {
    const lease = this.#leases ? await this.#leases.claim(ref) : undefined;
    if (this.#leases && !lease) return; // another process handles it; its marker stays until that one is done
    try {
      await this.#processFile(ref, releaseSlot);
    } catch (err) {
      if (!(err instanceof LeftPending)) throw err;
    } finally {
      await lease?.release();
    }
  }

  async #processFile(ref: FileRef, releaseSlot: () => void): Promise<void> {
    const { keyPrefix } = this.#config;
    const runner = this.#runner;
    if (!runner) throw new LeftPending('not started');
    const log = this.#log.child({ fileId: ref.id, tenant: ref.tenant });
    const read = await this.#readOrNull(ref);
    if (!read) {
      if (ref.markedAt && Date.now() - ref.markedAt.getTime() > ORPHAN_MARKER_MS) {
        await deleteMarker(this.#storage, keyPrefix, ref.tenant, ref.id);
      }
      return;
    }
    const m = read.manifest;
    const save = manifestSaver(this.#storage, keyPrefix, m, read.etag);
    try {
      await runner.runAll(m, save, log);
      releaseSlot();
      if (this.#closing.signal.aborted || hasUnfinishedJobs(m)) return;
      await this.#delivery.deliver(m, save, log);
      if (this.#closing.signal.aborted) return;
      await deleteMarker(this.#storage, keyPrefix, m.tenant, m.id);
    } catch (err) {
      if (!(err instanceof FileGone)) throw err;
      // Deleted while we worked: remove what we may have written after the delete.
      log.info('file deleted during processing; removing its outputs');
      await deleteFileObjects(this.#storage, keyPrefix, m.tenant, m.id);
    }
  }

  async #readOrNull(ref: FileRef): Promise<{ manifest: Manifest; etag: string } | null> {
    try {
      return await readManifestVersion(this.#storage, this.#config.keyPrefix, ref.tenant, ref.id);
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return null;
      throw err;
    }
  }
}
