// The job service: runs committed files' jobs in a piscina pool of worker
// threads, records every state change in the file's manifest, delivers the
// completion webhook, and removes the file's marker once nothing is left.
//
// Durability: the marker written at commit is the outbox. Anything not
// finished when the process stops (queue overflow, shutdown past its grace, a
// crash, SIGKILL) still has its marker; start() and a periodic rescan list the
// marker prefix and finish the work. Attempts are persisted before each run,
// so a job that crashes the process is retried at most maxAttempts times.
//
// Memory: at most queueMax file refs wait in memory (a few hundred bytes
// each); past that, work stays pending in storage until a rescan. At most
// 2 × poolSize files are processed at once.

import { setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';
import type { Config } from '../config.ts';
import { isSluiceError, type ErrorCode, type ErrorData } from '../errors.ts';
import { deleteFileObjects, readManifest, writeManifest } from '../core/files.ts';
import type { CoreLog } from '../core/ingest.ts';
import { deleteMarker, hasUnfinishedJobs, jobCatalogue, markerRoot, needsMarker, parseMarkerKey, type JobQueue, type JobSpec } from '../core/jobs.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest } from '../core/manifest.ts';
import type { Storage } from '../storage/storage.ts';
import type { TaskResult } from '../../workers/tasks.ts';
import { buildTask, toVariant } from './tasks.ts';
import { deliverWebhook, webhookBackoff } from './webhook.ts';

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
}

interface FileRef {
  tenant: string;
  id: string;
  /** When the marker was written, if known (from a listing). */
  markedAt?: Date;
}

/** A marker without a manifest this old is debris of a commit that never finished. */
const ORPHAN_MARKER_MS = 10 * 60_000;
/** The pool kills a worker this long after a job's own time limit passed (backstop for a stuck native call). */
const HARD_KILL_GRACE_MS = 5_000;
/** Errors worth another attempt; the rest (bad image, missing original) fail at once. */
const TRANSIENT: ReadonlySet<string> = new Set<ErrorCode>(['JOB_TIMEOUT', 'STORAGE_UNAVAILABLE', 'INTERNAL']);

class FileGone extends Error {}
/** Stop without recording anything: the marker keeps the work for a later start or rescan. */
class LeftPending extends Error {}

export class JobService implements JobQueue {
  readonly #config: Readonly<Config>;
  readonly #storage: Storage;
  readonly #log: JobServiceDeps['log'];
  readonly #catalogue: ReadonlyMap<string, JobSpec>;
  readonly #maxActive: number;
  #pool: Piscina | undefined;
  #queue: FileRef[] = [];
  /** tenant/id of every file queued, processing or delivering: never taken twice. */
  #known = new Set<string>();
  #active = 0;
  #delivering = 0;
  #running = 0;
  #completed = 0;
  #failed = 0;
  #overflowed = false;
  #deferred = 0;
  #closing = false;
  #stop = new AbortController();
  #inflight = new Set<Promise<void>>();
  #scanning: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** libvips threads per image job, as sharp reports it once loaded (0 while jobs are off). */
  #sharpConcurrency = 0;

  constructor(deps: JobServiceDeps) {
    this.#config = deps.config;
    this.#storage = deps.storage;
    this.#log = deps.log;
    this.#catalogue = jobCatalogue(deps.config);
    this.#maxActive = Math.max(1, deps.config.jobs.poolSize * 2);
  }

  async start(): Promise<void> {
    const { jobs } = this.#config;
    if (jobs.poolSize > 0) {
      // libvips settings are process-wide, so the workers inherit them. Loaded only
      // when jobs run: libvips costs ~15 MiB of RSS a jobless instance need not pay.
      const { default: sharp } = await import('sharp');
      sharp.concurrency(jobs.image.sharpConcurrency);
      sharp.cache(false);
      this.#sharpConcurrency = sharp.concurrency();
      this.#pool = new Piscina({ minThreads: jobs.poolSize, maxThreads: jobs.poolSize, idleTimeout: 60_000 });
    }
    this.#log.info(
      { jobs: { poolSize: jobs.poolSize, uvThreadpoolSize: jobs.uvThreadpoolSize, sharpConcurrency: this.#sharpConcurrency, queueMax: jobs.queueMax, timeoutMs: jobs.timeoutMs, webhook: jobs.webhook !== undefined } },
      'job service started',
    );
    void this.rescan();
    this.#timer = setInterval(() => void this.rescan(), jobs.rescanMs).unref();
  }

  /** Wait for running work up to graceMs, then stop; whatever is left stays pending for the next start. */
  async close(graceMs: number): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#timer);
    this.#queue = [];
    const settled = Promise.allSettled([...this.#inflight]);
    await Promise.race([settled, sleep(graceMs, undefined, { ref: false })]);
    this.#stop.abort(new LeftPending('closing'));
    // Bounded: a thread stuck in native code must not hold shutdown hostage.
    await Promise.race([this.#pool?.destroy(), sleep(5_000, undefined, { ref: false })]);
    await Promise.race([Promise.allSettled([...this.#inflight]), sleep(2_000, undefined, { ref: false })]);
  }

  stats(): JobStats {
    return {
      queueDepth: this.#queue.length,
      poolQueue: this.#pool?.queueSize ?? 0,
      running: this.#running,
      activeFiles: this.#active,
      delivering: this.#delivering,
      overflowed: this.#overflowed,
      deferred: this.#deferred,
      poolSize: this.#config.jobs.poolSize,
      uvThreadpoolSize: this.#config.jobs.uvThreadpoolSize,
      sharpConcurrency: this.#sharpConcurrency,
      completed: this.#completed,
      failed: this.#failed,
    };
  }

  enqueue(files: readonly Manifest[]): void {
    for (const m of files) {
      if (needsMarker(m, this.#config)) this.#offer({ tenant: m.tenant, id: m.id });
    }
    this.#pump();
  }

  /** List the marker prefix and queue what is not already in hand. Single-flight. */
  rescan(): Promise<void> {
    this.#scanning ??= this.#scan()
      .catch((err: unknown) => this.#log.warn({ err }, 'job rescan failed; retrying at the next interval'))
      .finally(() => (this.#scanning = undefined));
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    const prefix = markerRoot(this.#config.keyPrefix);
    let startAfter: string | undefined;
    this.#overflowed = false;
    while (!this.#closing) {
      const page = await this.#storage.list({ prefix, startAfter, limit: 1000 });
      for (const o of page.objects) {
        const ref = parseMarkerKey(this.#config.keyPrefix, o.key);
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
    if (this.#closing) return false;
    const k = `${ref.tenant}/${ref.id}`;
    if (this.#known.has(k)) return true;
    if (this.#queue.length >= this.#config.jobs.queueMax) {
      if (!this.#overflowed) this.#log.warn({ queueMax: this.#config.jobs.queueMax }, 'job queue full; new work stays pending in storage');
      this.#overflowed = true;
      this.#deferred++;
      return false;
    }
    this.#known.add(k);
    this.#queue.push(ref);
    return true;
  }

  #pump(): void {
    while (!this.#closing && this.#active < this.#maxActive && this.#queue.length > 0) {
      const ref = this.#queue.shift()!;
      this.#active++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.#active--;
        this.#pump();
      };
      const work = this.#processFile(ref, release)
        .catch((err: unknown) => {
          if (!(err instanceof LeftPending)) this.#log.error({ err, fileId: ref.id }, 'file processing failed; the marker stays for a later attempt');
        })
        .finally(() => {
          release();
          this.#known.delete(`${ref.tenant}/${ref.id}`);
          this.#inflight.delete(work);
        });
      this.#inflight.add(work);
    }
    if (this.#overflowed && this.#queue.length === 0 && !this.#closing) void this.rescan();
  }

  async #processFile(ref: FileRef, releaseSlot: () => void): Promise<void> {
    const config = this.#config;
    const log = this.#log.child({ fileId: ref.id, tenant: ref.tenant });
    const m = await this.#readOrNull(ref);
    if (!m) {
      if (ref.markedAt && Date.now() - ref.markedAt.getTime() > ORPHAN_MARKER_MS) {
        await deleteMarker(this.#storage, config.keyPrefix, ref.tenant, ref.id);
      }
      return;
    }
    const save = serialSaver(async () => {
      const keys = fileKeys(config.keyPrefix, m.tenant, m.id);
      if (!(await this.#storage.head(keys.manifest))) throw new FileGone();
      await writeManifest(this.#storage, config.keyPrefix, m);
    });
    try {
      await this.#runJobs(m, save, log);
      releaseSlot();
      if (this.#closing || hasUnfinishedJobs(m)) return;
      await this.#deliver(m, save, log);
      if (this.#closing) return;
      await deleteMarker(this.#storage, config.keyPrefix, m.tenant, m.id);
    } catch (err) {
      if (!(err instanceof FileGone)) throw err;
      // Deleted while we worked: remove what we may have written after the delete.
      log.info('file deleted during processing; removing its outputs');
      await deleteFileObjects(this.#storage, config.keyPrefix, m.tenant, m.id);
    }
  }

  async #readOrNull(ref: FileRef): Promise<Manifest | null> {
    try {
      return await readManifest(this.#storage, this.#config.keyPrefix, ref.tenant, ref.id);
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return null;
      throw err;
    }
  }

  async #runJobs(m: Manifest, save: () => Promise<void>, log: CoreLog): Promise<void> {
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

  async #runJob(m: Manifest, name: string, save: () => Promise<void>, log: CoreLog): Promise<void> {
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
        await sleep(Math.min(1000 * 2 ** (rec.attempts - 1), 30_000), undefined, { signal: this.#stop.signal }).catch(() => {
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

  async #runTask(spec: JobSpec, m: Manifest): Promise<TaskResult> {
    const pool = this.#pool;
    if (!pool || this.#closing) throw new LeftPending('closing');
    if (spec.kind === 'image' && m.size > this.#config.jobs.image.maxInputBytes) {
      return { ok: false, error: { code: 'IMAGE_TOO_LARGE', message: `The original is ${m.size} bytes, over the ${this.#config.jobs.image.maxInputBytes} byte limit of image jobs` } };
    }
    const { filename, task } = buildTask(spec, m, this.#config);
    const hardLimit = AbortSignal.timeout(this.#config.jobs.timeoutMs + HARD_KILL_GRACE_MS);
    this.#running++;
    try {
      return (await pool.run(task, { filename, signal: AbortSignal.any([hardLimit, this.#stop.signal]) })) as TaskResult;
    } catch (err) {
      if (this.#closing) throw new LeftPending('closing');
      if (hardLimit.aborted) return { ok: false, error: { code: 'JOB_TIMEOUT', message: 'The job exceeded its time limit and its worker was stopped' } };
      return { ok: false, error: { code: 'INTERNAL', message: `worker failed: ${err instanceof Error ? err.message : String(err)}` } };
    } finally {
      this.#running--;
    }
  }

  async #deliver(m: Manifest, save: () => Promise<void>, log: CoreLog): Promise<void> {
    const cfg = this.#config.jobs.webhook;
    if (!cfg || m.webhook?.state === 'delivered' || m.webhook?.state === 'failed') return;
    // Bounded like the queue: past it, the marker keeps the delivery for a later rescan.
    if (this.#delivering >= this.#config.jobs.queueMax) throw new LeftPending('too many deliveries waiting');
    this.#delivering++;
    try {
      for (let attempt = (m.webhook?.attempts ?? 0) + 1; ; attempt++) {
        // Persist the attempt first: a crash mid-delivery still counts it.
        m.webhook = { state: 'pending', attempts: attempt, ...(m.webhook?.lastError ? { lastError: m.webhook.lastError } : {}) };
        await save();
        try {
          await deliverWebhook(cfg, m, this.#stop.signal);
          m.webhook = { state: 'delivered', attempts: attempt, deliveredAt: new Date().toISOString() };
          log.info({ webhook: { attempts: attempt } }, 'webhook delivered');
          await save();
          return;
        } catch (err) {
          if (this.#closing) throw new LeftPending('closing');
          const lastError = err instanceof Error ? err.message : String(err);
          if (attempt >= cfg.maxAttempts) {
            m.webhook = { state: 'failed', attempts: attempt, lastError };
            log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook failed; giving up');
            await save();
            return;
          }
          m.webhook = { state: 'pending', attempts: attempt, lastError };
          log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook attempt failed; retrying');
          await sleep(webhookBackoff(cfg, attempt), undefined, { signal: this.#stop.signal }).catch(() => {
            throw new LeftPending('closing');
          });
        }
      }
    } finally {
      this.#delivering--;
    }
  }
}

/**
 * Runs `write` one at a time. A call made while a write is already waiting to
 * start joins that one (it will write the latest state anyway), so bursts of
 * job completions cost one storage write, not one each.
 */
function serialSaver(write: () => Promise<void>): () => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  return () => {
    if (queued) return queued;
    const next = tail.then(() => {
      queued = undefined;
      return write();
    }, () => {
      queued = undefined;
      return write();
    });
    queued = next;
    tail = next.catch(() => {});
    return next;
  };
}
