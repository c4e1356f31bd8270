// A file's work as separate steps, for a queue that schedules each apart
// (BullMQ, bullmq-queue.ts): one step per job of the file, then one for its
// webhook. Each step reads the manifest afresh and changes only its own record
// with a compare-and-swap, retried on a conflict, so the jobs of one file may
// run on different workers at once. A step that finds its work already ended
// does nothing but pass the file on: a duplicated or redelivered step (a
// stalled job another worker picked up, a reconcile racing a commit) is
// harmless, and the manifest holds one record per job whatever ran twice.
//
// Attempts: the manifest counts them before each run, as the embedded path
// does, so a job whose worker is killed every time still ends failed after
// maxAttempts. Whether a failure is retried is decided here; when and after
// what backoff is the queue's (BullMQ's attempts and backoff).

import type { Config } from '../config.ts';
import { isSluiceError, type ErrorData } from '../errors.ts';
import { deleteFileObjects, readManifestVersion, writeManifest } from '../core/files.ts';
import type { CoreLog } from '../core/ingest.ts';
import { deleteMarker, hasUnfinishedJobs, jobCatalogue, type JobSpec } from '../core/jobs.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest } from '../core/manifest.ts';
import type { Storage } from '../storage/storage.ts';
import type { StopSignals } from './control.ts';
import { TRANSIENT, type JobRunner } from './job-runner.ts';
import type { FileRef } from './queue.ts';
import { toVariant } from './tasks.ts';
import { deliverWebhook, type WebhookConfig } from './webhook.ts';

/** A transient failure with attempts left: the queue runs the step again after its backoff. */
export class RetryStep extends Error {}

/** What a file still needs, read from its manifest. */
export interface PendingSteps {
  /** Jobs not ended yet. */
  jobs: string[];
  /** Every job ended and a webhook is still to deliver. */
  webhook: boolean;
}

/** After a job step: more jobs of the file are open, the webhook is next, or the file is finished (marker removed). */
export type AfterJob = 'open' | 'webhook' | 'finished';

/** A marker without a manifest this old is debris of a commit that never finished. */
const ORPHAN_MARKER_MS = 10 * 60_000;
/** Compare-and-swap rounds before a step gives up (the queue retries it): only the file's own jobs write its manifest. */
const MAX_CAS_ROUNDS = 16;

export interface FileStepsDeps {
  config: Readonly<Config>;
  storage: Storage;
  runner: () => JobRunner | undefined;
  signals: StopSignals;
}

export class FileSteps {
  readonly #config: Readonly<Config>;
  readonly #storage: Storage;
  readonly #runner: () => JobRunner | undefined;
  readonly #signals: StopSignals;
  readonly #catalogue: ReadonlyMap<string, JobSpec>;
  readonly #webhook: WebhookConfig | undefined;

  constructor(d: FileStepsDeps) {
    this.#config = d.config;
    this.#storage = d.storage;
    this.#runner = d.runner;
    this.#signals = d.signals;
    this.#catalogue = jobCatalogue(d.config);
    this.#webhook = d.config.jobs.webhook;
  }

  /**
   * The steps a marker stands for. null when there is nothing to enqueue: no
   * manifest yet (a commit in progress; an old orphan marker is removed), or
   * everything ended (the marker a crash left is removed).
   */
  async pending(ref: FileRef): Promise<PendingSteps | null> {
    const read = await this.#read(ref);
    if (!read) {
      if (ref.markedAt && Date.now() - ref.markedAt.getTime() > ORPHAN_MARKER_MS) await this.#dropMarker(ref);
      return null;
    }
    const m = read.manifest;
    const jobs = Object.entries(m.jobs ?? {}).filter(([, r]) => r.state === 'pending' || r.state === 'running').map(([n]) => n);
    const webhook = jobs.length === 0 && this.#webhook !== undefined && m.webhook?.state !== 'delivered' && m.webhook?.state !== 'failed';
    if (jobs.length === 0 && !webhook) {
      await this.#dropMarker(ref);
      return null;
    }
    return { jobs, webhook };
  }

  /** One attempt of job `name`. Throws RetryStep for a transient failure with attempts left. */
  async runJob(ref: FileRef, name: string, log: CoreLog): Promise<AfterJob> {
    const { maxAttempts } = this.#config.jobs;
    const runner = this.#runner();
    if (!runner) throw new RetryStep('the job pool is not running');
    let attempt = 0;
    let gaveUp = false;
    const now = () => new Date().toISOString();
    const started = await this.#update(ref, (m) => {
      attempt = 0;
      gaveUp = false;
      const rec = m.jobs?.[name];
      if (!rec || (rec.state !== 'pending' && rec.state !== 'running')) return false;
      if (rec.attempts >= maxAttempts) {
        // Still unfinished after its last attempt: the worker died or stopped during every one.
        m.jobs![name] = { ...rec, state: 'failed', updatedAt: now(), error: rec.error ?? { code: 'INTERNAL', message: `gave up after ${rec.attempts} attempts that never finished` } };
        gaveUp = true;
        return true;
      }
      attempt = rec.attempts + 1;
      m.jobs![name] = { ...rec, state: 'running', attempts: attempt, updatedAt: now() };
      return true;
    });
    if (!started) return 'finished'; // deleted: nothing of ours was written
    if (gaveUp) runner.count('failed');
    let latest = started;
    if (attempt > 0) {
      const spec = this.#catalogue.get(name);
      log.info({ job: name, attempt }, 'job started');
      const t0 = performance.now();
      const result = spec ? await runner.runTask(spec, started) : { ok: false as const, error: { code: 'UNKNOWN_JOB' as const, message: `job ${name} is no longer configured` } };
      const durationMs = Math.round(performance.now() - t0);
      let retry: ErrorData | undefined;
      const saved = await this.#update(ref, (m) => {
        const rec = m.jobs?.[name];
        if (!rec) return false;
        const updatedAt = now();
        if (result.ok && spec) {
          const key = fileKeys(this.#config.keyPrefix, m.tenant, m.id).variant(name);
          m.jobs![name] = { state: 'done', attempts: rec.attempts, updatedAt, output: toVariant(spec, key, result.output) };
        } else {
          const error: ErrorData = result.ok ? { code: 'INTERNAL', message: 'no job spec' } : result.error;
          if (TRANSIENT.has(error.code) && attempt < maxAttempts) {
            retry = error;
            m.jobs![name] = { ...rec, updatedAt, error };
          } else {
            m.jobs![name] = { state: 'failed', attempts: rec.attempts, updatedAt, error };
          }
        }
        return true;
      });
      if (!saved) {
        // Deleted while the job ran: remove what it may have written after the delete.
        log.info('file deleted during processing; removing its outputs');
        await deleteFileObjects(this.#storage, this.#config.keyPrefix, ref.tenant, ref.id);
        return 'finished';
      }
      if (retry) {
        log.warn({ job: name, durationMs, attempt, error: retry }, 'job attempt failed; retrying');
        throw new RetryStep(retry.message);
      }
      const outcome = saved.jobs?.[name]?.state === 'done' ? 'done' : 'failed';
      runner.count(outcome);
      log.info({ job: name, durationMs, outcome, attempt }, outcome === 'done' ? 'job done' : 'job failed');
      latest = saved;
    }
    if (hasUnfinishedJobs(latest)) return 'open';
    if (this.#webhook && latest.webhook?.state !== 'delivered' && latest.webhook?.state !== 'failed') return 'webhook';
    await this.#dropMarker(ref);
    return 'finished';
  }

  /** One delivery attempt of the file's webhook. Throws RetryStep while attempts are left. */
  async deliver(ref: FileRef, log: CoreLog): Promise<void> {
    const cfg = this.#webhook;
    let attempt = 0;
    const m = await this.#update(ref, (m) => {
      attempt = 0;
      if (!cfg || hasUnfinishedJobs(m) || m.webhook?.state === 'delivered' || m.webhook?.state === 'failed') return false;
      attempt = (m.webhook?.attempts ?? 0) + 1;
      m.webhook = { state: 'pending', attempts: attempt, ...(m.webhook?.lastError ? { lastError: m.webhook.lastError } : {}) };
      return true;
    });
    if (!m) return;
    if (!cfg || attempt === 0) {
      if (!hasUnfinishedJobs(m)) await this.#dropMarker(ref);
      return;
    }
    let lastError: string | undefined;
    try {
      await deliverWebhook(cfg, m, this.#signals.stop);
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    const final = lastError === undefined || attempt >= cfg.maxAttempts;
    await this.#update(ref, (fresh) => {
      if (lastError === undefined) fresh.webhook = { state: 'delivered', attempts: attempt, deliveredAt: new Date().toISOString() };
      else fresh.webhook = { state: final ? 'failed' : 'pending', attempts: attempt, lastError };
      return true;
    });
    if (lastError === undefined) log.info({ webhook: { attempts: attempt } }, 'webhook delivered');
    else if (final) log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook failed; giving up');
    else {
      log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook attempt failed; retrying');
      throw new RetryStep(lastError);
    }
    await this.#dropMarker(ref);
  }

  /**
   * Read the manifest, let `change` edit it, and write it back only if the
   * version read is still the current one; on a conflict, again from a fresh
   * read. Resolves with the manifest as written (or as read, when `change`
   * returned false), null once the file is gone.
   */
  async #update(ref: FileRef, change: (m: Manifest) => boolean): Promise<Manifest | null> {
    for (let round = 1; ; round++) {
      const read = await this.#read(ref);
      if (!read) return null;
      if (!change(read.manifest)) return read.manifest;
      try {
        await writeManifest(this.#storage, this.#config.keyPrefix, read.manifest, { ifMatch: read.etag });
        return read.manifest;
      } catch (err) {
        if (!isSluiceError(err) || err.code !== 'WRITE_CONFLICT' || round >= MAX_CAS_ROUNDS) throw err;
      }
    }
  }

  async #read(ref: FileRef): Promise<{ manifest: Manifest; etag: string } | null> {
    try {
      return await readManifestVersion(this.#storage, this.#config.keyPrefix, ref.tenant, ref.id);
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return null;
      throw err;
    }
  }

  #dropMarker(ref: FileRef): Promise<void> {
    return deleteMarker(this.#storage, this.#config.keyPrefix, ref.tenant, ref.id);
  }
}
