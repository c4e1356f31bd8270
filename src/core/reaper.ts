// The reaper: stale work must never pile up silently (a pending multipart
// upload costs storage money until someone aborts it). Each sweep:
//   - asks the backend to drop its own stale upload state under the prefix
//     (S3: abort multipart uploads; fs: remove temp files), and
//   - removes the objects of files that were never committed: a file is
//     committed exactly when its manifest exists, so a <tenant>/<id>/ group
//     with no manifest.json whose newest object is older than the max age is
//     debris of an upload (or a delete) that crashed half-way, unless it has
//     a resumable-upload marker: a tus upload is the expiry sweep's to remove
//     (src/tus/sweep.ts), however old its bytes look;
//   - removes the files of multi-file requests that died mid-commit (a
//     commit record older than the max age: commits.ts);
//   - removes the S3 endpoint's multipart uploads left neither completed nor
//     aborted (src/s3api/upload-sweep.ts).
// The max age must exceed the longest upload: younger work may still be in
// flight, on this instance or another. Start-up enforces it against the tus
// expiry and the total deadline of an upload request (config.ts). Sweeps are idempotent, so several
// instances sweeping the same bucket only repeat each other's work.
// Cost: one LIST request per 1,000 keys under the prefix per sweep.

import { canSweepStale, type Storage } from '../storage/storage.ts';
import { pendingCommits } from './commits.ts';
import { deleteFileObjects } from './files.ts';
import type { CoreLog } from './ingest.ts';
import { isFileId, systemPrefix, uploadMarkerPrefix } from './keys.ts';
import { sweepAbandonedS3Uploads } from '../s3api/upload-sweep.ts';

export interface SweepResult {
  /** Pending multipart uploads aborted (S3) or temp files removed (fs). */
  staleUploads: number;
  /** Objects removed from uncommitted file groups. */
  orphanObjects: number;
  /** Uncommitted file groups removed. */
  orphanFiles: number;
  /** Multi-file requests that died mid-commit, whose files were removed (commits.ts). */
  abandonedCommits: number;
  /** Multipart uploads of the S3 endpoint, neither completed nor aborted, removed. */
  abandonedS3Uploads: number;
}

export interface ReaperOptions {
  storage: Storage;
  keyPrefix: string;
  maxAgeMs: number;
  log: CoreLog;
  /** Called after each sweep with what it removed (metrics). */
  onSweep?: (r: SweepResult, storageKind: string) => void;
  onError?: (err: unknown) => void;
}

export async function sweepOnce(opts: ReaperOptions, now = Date.now()): Promise<SweepResult> {
  const { storage, keyPrefix, log } = opts;
  const olderThan = new Date(now - opts.maxAgeMs);
  const prefix = `${keyPrefix}/`;
  const result: SweepResult = { staleUploads: 0, orphanObjects: 0, orphanFiles: 0, abandonedCommits: 0, abandonedS3Uploads: 0 };
  if (canSweepStale(storage)) {
    // A resumable upload's multipart state is the tus store's, while its marker lives.
    const keep = async (key: string) => {
      const [tenant, id] = key.slice(prefix.length).split('/');
      return tenant !== undefined && id !== undefined && isFileId(id) && (await storage.head(`${uploadMarkerPrefix(keyPrefix)}${tenant}/${id}`)) !== null;
    };
    result.staleUploads = await storage.sweepStale({ prefix, olderThan, keep });
    if (result.staleUploads > 0) log.warn({ reaper: { staleUploads: result.staleUploads, backend: storage.kind } }, 'reaper: removed stale upload state');
  }

  // Requests that died mid-commit: their files stay hidden while the record exists; remove the files, then the record.
  for await (const c of pendingCommits(storage, keyPrefix)) {
    if (c.lastModified.getTime() >= olderThan.getTime()) continue;
    const record = await c.read();
    for (const id of record?.files ?? []) {
      if (isFileId(id) && record) await deleteFileObjects(storage, keyPrefix, record.tenant, id);
    }
    await storage.delete(c.key);
    result.abandonedCommits++;
    log.warn({ reaper: { commit: c.commitId, files: record?.files.length ?? 0 } }, 'reaper: removed the files of a request that never committed');
  }

  result.abandonedS3Uploads = await sweepAbandonedS3Uploads(storage, keyPrefix, olderThan);
  if (result.abandonedS3Uploads > 0) log.warn({ reaper: { abandonedS3Uploads: result.abandonedS3Uploads } }, 'reaper: removed abandoned S3-endpoint multipart uploads');

  // Keys of one file are adjacent in listing order (<id>/manifest.json, <id>/original, <id>/variants/...).
  const system = systemPrefix(keyPrefix);
  let group: { base: string; tenant: string; id: string; keys: string[]; committed: boolean; newest: number } | undefined;
  const flush = async () => {
    const g = group;
    group = undefined;
    if (!g || g.committed || g.newest >= olderThan.getTime()) return;
    if (await storage.head(`${uploadMarkerPrefix(keyPrefix)}${g.tenant}/${g.id}`)) return;
    for (const key of g.keys) await storage.delete(key);
    result.orphanObjects += g.keys.length;
    result.orphanFiles++;
    log.warn({ reaper: { removed: g.keys.length, file: g.base, newest: new Date(g.newest).toISOString() } }, 'reaper: removed an uncommitted file');
  };
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix, startAfter, limit: 1000 });
    for (const o of page.objects) {
      if (o.key.startsWith(system)) continue;
      const rest = o.key.slice(prefix.length).split('/');
      const [tenant, id, leaf] = rest;
      if (!tenant || !id || leaf === undefined || !isFileId(id)) continue;
      const base = `${prefix}${tenant}/${id}/`;
      if (group?.base !== base) {
        await flush();
        group = { base, tenant, id, keys: [], committed: false, newest: 0 };
      }
      group.keys.push(o.key);
      if (rest.length === 3 && leaf === 'manifest.json') group.committed = true;
      group.newest = Math.max(group.newest, o.lastModified.getTime());
    }
    if (!page.truncated || page.objects.length === 0) break;
    startAfter = page.objects.at(-1)!.key;
  }
  await flush();
  log.info({ reaper: { ...result, backend: storage.kind, olderThan: olderThan.toISOString() } }, 'reaper: sweep done');
  opts.onSweep?.(result, storage.kind);
  return result;
}

/** Sweeps now and every `intervalMs` until stopped. A sweep never overlaps the next. */
export class Reaper {
  readonly #opts: ReaperOptions;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;

  constructor(opts: ReaperOptions & { intervalMs: number }) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs;
  }

  /** Resolves after the first sweep (errors are logged, not thrown: storage may be down at boot). */
  async start(): Promise<void> {
    await this.#sweep();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.#intervalMs <= 0) return;
    // Jitter spreads the sweeps of instances started together.
    const delay = this.#intervalMs * (0.9 + Math.random() * 0.2);
    this.#timer = setTimeout(() => void this.#sweep().then(() => this.#schedule()), delay);
    this.#timer.unref();
  }

  #sweep(): Promise<unknown> {
    this.#running = sweepOnce(this.#opts).catch((err: unknown) => {
      this.#opts.log.error({ err }, 'reaper: sweep failed');
      this.#opts.onError?.(err);
    });
    return this.#running;
  }

  /** Stop scheduling and wait for a sweep in progress. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
