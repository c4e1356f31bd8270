// The FileQueue on Redis through BullMQ, used when SLUICE_REDIS_URL
// is set. Two queues under SLUICE_REDIS_PREFIX:
//   jobs      one BullMQ job per (file, job name), jobId `<tenant>.<file id>.<job name>`
//   webhooks  one per file, jobId `<tenant>.<file id>.webhook`, queued once its jobs ended
// A fixed jobId makes every enqueue idempotent: a retried commit, a reconcile
// racing a commit, or two nodes reconciling at once add each job once.
//
// The marker written at commit stays the outbox. A commit enqueues at once
// when Redis is up; when it is not (or the process dies between commit and
// enqueue), the reconcile, at start, every SLUICE_JOBS_RESCAN_MS and whenever
// the connection comes back, lists the markers and enqueues what they say is
// left. Attempts, backoff and the recovery of a killed worker's jobs are
// BullMQ's: `attempts`/`backoff` on every job, and the stalled-job check
// (a job whose lock, renewed by its worker every lockDuration/2, expired is
// moved back to wait for another worker).
//
// Memory: nothing is held per file in this process beyond the `concurrency`
// jobs running; waiting work lives in Redis (and in the markers).

import { Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisConfig } from '../config.ts';
import { mapBounded } from '../core/files.ts';
import type { CoreLog } from '../core/ingest.ts';
import { markerRoot, parseMarkerKey } from '../core/jobs.ts';
import type { Storage } from '../storage/storage.ts';
import { closeRedis, connectRedis } from '../redis/connection.ts';
import { RetryStep } from './file-steps.ts';
import type { FileQueue, FileRef, FileStepHandlers, QueueHandlers, QueueStats } from './queue.ts';

export interface BullmqQueueOptions {
  redis: RedisConfig;
  storage: Storage;
  keyPrefix: string;
  log: CoreLog & { child(bindings: Record<string, unknown>): CoreLog };
  /** Run the consumers (roles worker and all); false: enqueue only (role ingest). */
  consume: boolean;
  /** Jobs this process runs at once (the pool's threads stay fed while jobs read and write storage). */
  concurrency: number;
  /** Attempts per job, as BullMQ counts them (the manifest's count decides the last one; file-steps.ts). */
  maxAttempts: number;
  /** Webhook retries; undefined without a webhook. */
  webhook: { maxAttempts: number; backoffMs: number } | undefined;
  /** BullMQ lock duration and stalled-check interval: a killed worker's job is picked up within about twice this. */
  lockMs: number;
  rescanMs: number;
  onRedisError?: () => void;
}

const JOBS = 'jobs';
const WEBHOOKS = 'webhooks';
/** Markers read at once during a reconcile (each costs a manifest read and one or two Redis calls). */
const RECONCILE_CONCURRENCY = 8;
/** Webhook deliveries at once: network waits, no CPU. */
const WEBHOOK_CONCURRENCY = 16;
/**
 * Markers whose work this process already put in Redis are skipped by later
 * reconciles (a backlog of N files would cost N manifest reads per interval),
 * except every FULL_RECONCILE_EVERY-th one and after a reconnect, which check
 * them all again. At most ENSURED_MAX remembered (~100 B each).
 */
const FULL_RECONCILE_EVERY = 10;
const ENSURED_MAX = 100_000;
/** Job retry backoff: 1 s doubling per attempt (BullMQ's exponential backoff), as the embedded runner. */
const JOB_BACKOFF_MS = 1000;

interface StepData {
  tenant: string;
  id: string;
  job?: string;
}

export function jobStepId(tenant: string, id: string, job: string): string {
  return `${tenant}.${id}.${job}`;
}

export function webhookStepId(tenant: string, id: string): string {
  return `${tenant}.${id}.webhook`;
}

export class BullmqQueue implements FileQueue {
  readonly #o: BullmqQueueOptions;
  readonly #conn: Redis;
  readonly #jobs: Queue<StepData>;
  readonly #webhooks: Queue<StepData>;
  #workers: Worker<StepData>[] = [];
  #steps: FileStepHandlers | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #stopped = false;
  #closing: Promise<unknown> | undefined;
  #active = 0;
  #stalled = 0;
  #waiting = 0;
  #ensured = new Set<string>();
  #reconciles = 0;

  constructor(o: BullmqQueueOptions) {
    this.#o = o;
    this.#conn = connectRedis(o.redis, 'bullmq', { log: o.log, ...(o.onRedisError ? { onError: o.onRedisError } : {}) });
    const prefix = this.#prefix();
    const jobOpts: JobsOptions = {
      attempts: o.maxAttempts,
      backoff: { type: 'exponential', delay: JOB_BACKOFF_MS },
      removeOnComplete: true,
      // Kept for the failed count and for inspection; a reconcile frees the id of a failed job whose marker is still there.
      removeOnFail: { count: 1000 },
    };
    this.#jobs = new Queue<StepData>(JOBS, { connection: this.#conn, prefix, defaultJobOptions: jobOpts });
    this.#webhooks = new Queue<StepData>(WEBHOOKS, {
      connection: this.#conn,
      prefix,
      defaultJobOptions: {
        ...jobOpts,
        attempts: o.webhook?.maxAttempts ?? 1,
        backoff: { type: 'exponential', delay: o.webhook?.backoffMs ?? JOB_BACKOFF_MS },
      },
    });
    for (const q of [this.#jobs, this.#webhooks]) q.on('error', () => {}); // counted and logged by the connection
  }

  #prefix(): string {
    return `${this.#o.redis.prefix}:bull`;
  }

  async start(handlers: QueueHandlers): Promise<void> {
    this.#steps = handlers.steps;
    if (this.#o.consume) {
      const common = {
        connection: this.#conn,
        prefix: this.#prefix(),
        lockDuration: this.#o.lockMs,
        stalledInterval: this.#o.lockMs,
        // A job whose worker dies every time is failed by the manifest's attempt count first (file-steps.ts).
        maxStalledCount: this.#o.maxAttempts,
      };
      this.#workers = [
        new Worker<StepData>(JOBS, (job) => this.#runJob(job), { ...common, concurrency: this.#o.concurrency }),
        new Worker<StepData>(WEBHOOKS, (job) => this.#deliver(job), { ...common, concurrency: WEBHOOK_CONCURRENCY }),
      ];
      for (const w of this.#workers) {
        w.on('stalled', (jobId: string) => {
          this.#stalled++;
          this.#o.log.warn({ jobId }, 'job stalled (its worker stopped renewing the lock); back in the queue');
        });
        w.on('error', (err: Error) => this.#o.log.warn({ err: { message: err.message } }, 'bullmq worker error'));
      }
    }
    // The connection came back (Redis restarted, maybe empty): enqueue again what the markers hold.
    this.#conn.on('ready', () => {
      this.#ensured.clear();
      void this.rescan();
    });
    void this.rescan();
    this.#timer = setInterval(() => void this.rescan(), this.#o.rescanMs).unref();
  }

  add(refs: readonly FileRef[]): void {
    if (this.#stopped || this.#conn.status !== 'ready') return; // the markers keep the work; the reconcile enqueues it
    const jobs = refs.flatMap((r) => (r.jobs ?? []).map((name) => ({ tenant: r.tenant, id: r.id, name })));
    const hooks = refs.filter((r) => (r.jobs ?? []).length === 0 && this.#o.webhook);
    Promise.all([
      jobs.length > 0 ? this.#jobs.addBulk(jobs.map((j) => ({ name: j.name, data: { tenant: j.tenant, id: j.id, job: j.name }, opts: { jobId: jobStepId(j.tenant, j.id, j.name) } }))) : undefined,
      hooks.length > 0 ? this.#webhooks.addBulk(hooks.map((r) => ({ name: 'webhook', data: { tenant: r.tenant, id: r.id }, opts: { jobId: webhookStepId(r.tenant, r.id) } }))) : undefined,
    ]).catch((err: unknown) => this.#o.log.warn({ err }, 'enqueue failed; the reconcile enqueues from the markers'));
  }

  /** List the markers and enqueue what each says is left. Single-flight; never rejects. */
  rescan(): Promise<void> {
    if (this.#stopped || !this.#steps) return Promise.resolve();
    this.#scanning ??= this.#reconcile(this.#steps)
      .catch((err: unknown) => this.#o.log.warn({ err }, 'job reconcile failed; retrying at the next interval'))
      .finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    // Graceful: each worker takes nothing new and waits for its running jobs.
    this.#closing ??= Promise.allSettled(this.#workers.map((w) => w.close()));
  }

  async idle(): Promise<void> {
    await this.#closing;
  }

  async close(): Promise<void> {
    // Past the grace: jobs still running keep their lock until it expires, then another worker takes them.
    await Promise.allSettled(this.#workers.map((w) => w.close(true)));
    await Promise.allSettled([this.#jobs.close(), this.#webhooks.close(), this.#scanning]);
    await closeRedis(this.#conn);
  }

  stats(): QueueStats {
    return { queueDepth: this.#waiting, activeFiles: this.#active, overflowed: false, deferred: 0 };
  }

  async counts(): Promise<readonly { queue: string; state: string; count: number }[]> {
    if (this.#conn.status !== 'ready') return [];
    const rows: { queue: string; state: string; count: number }[] = [];
    for (const q of [this.#jobs, this.#webhooks]) {
      const c = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0);
      if (q === this.#jobs) this.#waiting = waiting;
      rows.push({ queue: q.name, state: 'waiting', count: waiting });
      for (const state of ['active', 'delayed', 'failed'] as const) rows.push({ queue: q.name, state, count: c[state] ?? 0 });
    }
    rows.push({ queue: JOBS, state: 'stalled', count: this.#stalled });
    return rows;
  }

  async #runJob(job: Job<StepData>): Promise<void> {
    const { tenant, id, job: name } = job.data;
    if (!name) return;
    this.#active++;
    try {
      const next = await this.#step(() => this.#steps!.runJob({ tenant, id }, name));
      if (next === 'webhook') await this.#webhooks.add('webhook', { tenant, id }, { jobId: webhookStepId(tenant, id) });
    } finally {
      this.#active--;
    }
  }

  async #deliver(job: Job<StepData>): Promise<void> {
    const { tenant, id } = job.data;
    await this.#step(() => this.#steps!.deliver({ tenant, id }));
  }

  /** A RetryStep becomes a plain failure, which BullMQ retries after its backoff while attempts are left. */
  async #step<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof RetryStep) throw new Error(err.message);
      throw err;
    }
  }

  async #reconcile(steps: FileStepHandlers): Promise<void> {
    if (this.#conn.status !== 'ready') return;
    const { storage, keyPrefix } = this.#o;
    const prefix = markerRoot(keyPrefix);
    let startAfter: string | undefined;
    let enqueued = 0;
    if (this.#reconciles++ % FULL_RECONCILE_EVERY === 0) this.#ensured.clear();
    while (!this.#stopped) {
      const page = await storage.list({ prefix, startAfter, limit: 1000 });
      const refs = page.objects.flatMap((o) => {
        const ref = parseMarkerKey(keyPrefix, o.key);
        return ref && !this.#ensured.has(o.key) ? [{ ...ref, key: o.key, markedAt: o.lastModified }] : [];
      });
      const added = await mapBounded(refs, RECONCILE_CONCURRENCY, async (ref) => {
        const left = await steps.pending({ tenant: ref.tenant, id: ref.id, markedAt: ref.markedAt });
        if (!left) return 0;
        let n = 0;
        for (const name of left.jobs) n += await this.#ensure(this.#jobs, jobStepId(ref.tenant, ref.id, name), name, { tenant: ref.tenant, id: ref.id, job: name });
        if (left.webhook) n += await this.#ensure(this.#webhooks, webhookStepId(ref.tenant, ref.id), 'webhook', { tenant: ref.tenant, id: ref.id });
        if (this.#ensured.size < ENSURED_MAX) this.#ensured.add(ref.key);
        return n;
      });
      enqueued += added.reduce((a, b) => a + b, 0);
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1)!.key;
    }
    if (enqueued > 0) this.#o.log.info({ enqueued }, 'reconcile enqueued work found in the markers');
  }

  /** Add a job unless one with its id is waiting or running; a failed one with the same id is removed first. 1 when added. */
  async #ensure(q: Queue<StepData>, jobId: string, name: string, data: StepData): Promise<number> {
    const state = await q.getJobState(jobId);
    if (state === 'failed' || state === 'completed') await q.remove(jobId);
    else if (state !== 'unknown') return 0;
    await q.add(name, data, { jobId });
    return 1;
  }
}
