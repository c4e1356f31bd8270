// The tus 1.0 server (@tus/server) configured for sluice: uploads keyed by
// tenant at the file's final key, Upload-Length bounded by the file size
// limit, termination refused once finished, the S3 lock when the store is
// shared, and the finish hook that turns a complete upload into a committed
// file. Nothing here imports fastify: routes/tus-uploads.ts hands each
// request in as a web Request with its context registered in `contexts`.

import type { JobQueue } from '../core/jobs.ts';
import { MemoryLocker, Server } from '@tus/server';
import type { Locker, Upload } from '@tus/utils';
import type { Config } from '../config.ts';
import type { CoreLog } from '../core/ingest.ts';
import { deleteFileObjects } from '../core/files.ts';
import { fileKeys, isFileId, newFileId } from '../core/keys.ts';
import { sanitizeFileName } from '../core/names.ts';
import { isSluiceError } from '../errors.ts';
import { baseStorage } from '../storage/instrumented.ts';
import type { S3Storage } from '../storage/s3.ts';
import { translate } from '../storage/s3-errors.ts';
import { bytesOf, type Storage } from '../storage/storage.ts';
import { finishUpload, removeUpload } from './finish.ts';
import { fromTusError } from './protocol-errors.ts';
import { lockKey, parseUploadKey, pendingKey, uploadKey, type UploadRef } from './keys.ts';
import type { S3Locker } from './s3-locker.ts';
import { createTusStore, type TusStore } from './store.ts';
import { sweepExpiredUploads, type SweepResult } from './sweep.ts';

export const TUS_PATH = '/v1/uploads';
/** Response headers naming the committed file, sent with the answer to the last PATCH. */
export const FILE_ID_HEADER = 'Sluice-File-Id';
export const FILE_URL_HEADER = 'Sluice-File-Url';

export interface TusRequestContext {
  tenant: string;
  log: CoreLog;
  /** Set when the answer is one of our coded errors, so the route renders it as JSON. */
  error?: unknown;
}

export interface TusService {
  server: Server;
  store: TusStore;
  /** The upload lock, shared with the IETF draft's requests (resumable/). */
  locker: Locker;
  /** Per-request context, keyed by the web Request handed to the server. */
  contexts: WeakMap<Request, TusRequestContext>;
  sweep(opts?: { now?: Date }): Promise<SweepResult>;
  /**
   * For a HEAD that found the upload complete: the headers naming its file,
   * committing it first if an earlier finish failed (storage down, shutdown).
   */
  settleComplete(tenant: string, id: string, log: CoreLog): Promise<Record<string, string>>;
  /** The upload's size when every byte of it is stored; undefined while incomplete, deferred or unknown. */
  completedSize(tenant: string, id: string): Promise<number | undefined>;
  /** Give back the bucket locks this instance keeps idle (shutdown). */
  close(): Promise<void>;
}

export interface TusDeps {
  config: Readonly<Config>;
  storage: Storage;
  log: CoreLog;
  shutdownSignal?: AbortSignal | undefined;
  /** Committed files are handed to the job service, as with every other upload. */
  jobs?: JobQueue | undefined;
}

const PROCESS_LEASE = Symbol('process lock');

/** The tus service for this config; the S3 parts (store, bucket lock, AWS SDK) are imported only for S3 storage. */
export async function createTusService(deps: TusDeps): Promise<TusService> {
  const { config, storage } = deps;
  const prefix = config.keyPrefix;
  const contexts = new WeakMap<Request, TusRequestContext>();
  const ctxOf = (req: Request): TusRequestContext => {
    const c = contexts.get(req);
    if (!c) throw new Error('tus request without a sluice context');
    return c;
  };
  const refOf = (key: string): UploadRef => {
    const ref = parseUploadKey(prefix, key);
    if (!ref) throw new Error(`not a tus upload key: ${key}`);
    return ref;
  };
  const store: TusStore = await createTusStore(config, {
    onRefused: (key) => removeUpload({ ...deps, store }, refOf(key)),
    exists: async (key) => (await storage.head(key)) !== null,
    // One process serialises every write with the in-memory lock; the bucket lock says which lease is ours.
    leaseOf: (key) => (bucketLocker ? bucketLocker.leaseOf(key) : PROCESS_LEASE),
    onRemoved: async (key) => {
      const ref = refOf(key);
      // Termination is refused for finished uploads; a manifest here would mean a bug, so never touch a committed file.
      if (await storage.head(fileKeys(prefix, ref.tenant, ref.id).manifest)) return;
      await deleteFileObjects(storage, prefix, ref.tenant, ref.id);
      await storage.delete(pendingKey(prefix, ref));
    },
  });
  // The adapter itself: storage may be wrapped (metrics, quota) and the lock needs its S3 client.
  const adapter = baseStorage(storage);
  const lockTimeoutMs = config.tus.lockTimeoutMs;
  let bucketLocker: S3Locker | undefined;
  if (adapter.kind === 's3' && 'client' in adapter && config.tus.lock === 'bucket') {
    const s3 = adapter as S3Storage;
    const { S3Locker } = await import('./s3-locker.ts');
    bucketLocker = new S3Locker({ client: s3.client, bucket: s3.bucket, keyFor: (key) => lockKey(prefix, refOf(key)), acquireTimeoutMs: lockTimeoutMs });
  }
  const locker: Locker = bucketLocker ?? new MemoryLocker({ acquireLockTimeout: lockTimeoutMs });
  const never = new AbortController().signal;
  const stop = deps.shutdownSignal ?? never;
  const committedHeaders = (ref: UploadRef) => ({ [FILE_ID_HEADER]: ref.id, [FILE_URL_HEADER]: `/v1/files/${ref.id}` });

  /**
   * Commit a complete upload, once. @tus/server lets go of the upload's lock
   * before onUploadFinish, so the finish takes it again and holds it to the
   * end: a second final PATCH (or a HEAD) of the same upload waits here, then
   * finds the manifest, and a failed finish can never undo one that succeeded.
   * With the bucket lock this holds across instances too.
   */
  const finishOnce = async (upload: Upload, log: CoreLog): Promise<void> => {
    const ref = refOf(upload.id);
    const lock = locker.newLock(upload.id);
    // Waiters ask the holder to let go; a finish does not: it runs to its end (or to the shutdown).
    await lock.lock(stop, async () => {});
    try {
      if (await storage.head(fileKeys(prefix, ref.tenant, ref.id).manifest)) return;
      const staged = await finishUpload(
        { config, storage, log, store, jobs: deps.jobs },
        {
          ...ref,
          size: upload.size ?? upload.offset,
          name: sanitizeFileName(upload.metadata?.filename ?? upload.metadata?.name),
          declaredType: upload.metadata?.filetype ?? upload.metadata?.type ?? undefined,
          // Not the client's signal: the bytes are all here, so a client gone now still gets its file.
          signal: stop,
        },
      );
      log.info({ upload: { tus: true, id: staged.id, bytes: staged.size, type: staged.type.mime, outcome: 'committed' } }, 'upload committed');
    } finally {
      await lock.unlock();
    }
  };

  const server = new Server({
    path: TUS_PATH,
    datastore: store,
    locker,
    maxSize: config.limits.fileBytes,
    disableTerminationForFinishedUploads: true,
    exposedHeaders: ['Upload-Expires', FILE_ID_HEADER, FILE_URL_HEADER],
    namingFunction: (req) => uploadKey(prefix, { tenant: ctxOf(req).tenant, id: newFileId() }),
    getFileIdFromRequest: (req, lastPath) =>
      lastPath !== undefined && isFileId(lastPath) ? uploadKey(prefix, { tenant: ctxOf(req).tenant, id: lastPath }) : undefined,
    // Relative, so it stays right behind TLS-terminating proxies; clients resolve it against the endpoint.
    generateUrl: (_req, { path, id }) => `${path}/${refOf(id).id}`,
    onUploadCreate: async (_req, upload: Upload) => {
      // The sweep's index: written before the store creates anything.
      const ref = refOf(upload.id);
      const marker = { tenant: ref.tenant, id: ref.id, size: upload.size ?? null, createdAt: new Date().toISOString() };
      await storage.put(pendingKey(prefix, ref), bytesOf(Buffer.from(JSON.stringify(marker))), { contentType: 'application/json' });
      return { metadata: upload.metadata ?? {} };
    },
    onUploadFinish: async (req, upload: Upload) => {
      await finishOnce(upload, ctxOf(req).log);
      return { headers: committedHeaders(refOf(upload.id)) };
    },
    onResponseError: (req, err) => {
      const ctx = contexts.get(req);
      if (isSluiceError(err)) {
        if (ctx) ctx.error = err;
        return { status_code: err.status, body: err.message };
      }
      const tus = fromTusError(err);
      if (tus) {
        // One of tus's protocol answers: rendered as our JSON error by the route.
        if (ctx) ctx.error = tus;
        return undefined;
      }
      if (err instanceof Error) {
        // Not one of tus's protocol answers ({ status_code, body }): a storage or programming failure.
        const mapped = '$metadata' in err ? translate(err) : err;
        if (ctx) ctx.error = mapped;
        if (!isSluiceError(mapped) || mapped.status >= 500) ctx?.log.error({ err }, 'tus request failed');
      }
      return undefined;
    },
  });

  return {
    server,
    store,
    locker,
    contexts,
    sweep: (opts = {}) => sweepExpiredUploads({ config, storage, log: deps.log, store }, opts),
    settleComplete: async (tenant, id, log) => {
      const ref = { tenant, id };
      const upload = await store.getUpload(uploadKey(prefix, ref));
      await finishOnce(upload, log);
      return committedHeaders(ref);
    },
    completedSize: async (tenant, id) => {
      const upload = await store.getUpload(uploadKey(prefix, { tenant, id })).catch(() => undefined);
      return upload?.size !== undefined && upload.offset === upload.size ? upload.size : undefined;
    },
    close: async () => {
      await bucketLocker?.releaseAll();
    },
  };
}
