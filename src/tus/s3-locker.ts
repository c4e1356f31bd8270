// A tus Locker held in the bucket itself, so several instances behind one
// load balancer can take PATCHes for the same upload: a request writes an
// upload only while it holds `<prefix>/_system/tus/locks/<tenant>/<id>`.
//
// - Acquire: PutObject with If-None-Match: * (S3 and MinIO conditional
//   writes): exactly one request creates the lock object; the others get 412
//   and poll until it is gone or the acquire timeout passes (423-ish tus
//   ERR_LOCK_TIMEOUT).
// - Liveness: the holder rewrites the lock every TTL/3 with If-Match on its
//   own ETag. A lock older than TTL belongs to a dead holder and is deleted
//   with If-Match on the ETag that was seen stale, so two waiters cannot both
//   take it over. A holder whose refresh fails lost the lock: its request is
//   cancelled (tus stops the write) rather than writing without it.
// - Release: DeleteObject with If-Match on the holder's ETag.
// Within one instance a waiter also asks the local holder to let go (the tus
// "request release" path), so a client resuming on the same instance after a
// dropped connection does not wait for the dead request's socket to time out.

import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils';

export interface S3LockerOptions {
  client: S3Client;
  bucket: string;
  /** Upload id → lock object key. */
  keyFor(uploadId: string): string;
  /** A lock not refreshed for this long is taken over. */
  ttlMs?: number;
  /** A request waits this long for a lock before failing. */
  acquireTimeoutMs?: number;
}

const POLL_MS = 100;

export class S3Locker implements Locker {
  readonly opts: Required<S3LockerOptions>;
  /** Locks this instance holds, with the callback that asks the holder to let go. */
  readonly held = new Map<string, RequestRelease>();

  constructor(opts: S3LockerOptions) {
    this.opts = { ttlMs: 30_000, acquireTimeoutMs: 20_000, ...opts };
  }

  newLock(id: string): Lock {
    return new S3Lock(this, id);
  }
}

class S3Lock implements Lock {
  readonly #locker: S3Locker;
  readonly #id: string;
  readonly #key: string;
  #etag: string | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(locker: S3Locker, id: string) {
    this.#locker = locker;
    this.#id = id;
    this.#key = locker.opts.keyFor(id);
  }

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const { client, bucket, ttlMs, acquireTimeoutMs } = this.#locker.opts;
    const deadline = Date.now() + acquireTimeoutMs;
    let askedLocalHolder = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      try {
        const res = await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: this.#key, Body: lockBody(), ContentType: 'application/json', IfNoneMatch: '*' }),
        );
        this.#etag = res.ETag;
        this.#locker.held.set(this.#id, requestRelease);
        this.#heartbeat = setInterval(() => this.#refresh(requestRelease), Math.max(1000, Math.floor(ttlMs / 3)));
        this.#heartbeat.unref();
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const local = this.#locker.held.get(this.#id);
      if (local && !askedLocalHolder) {
        askedLocalHolder = true;
        await local();
      }
      await this.#takeOverIfStale(ttlMs);
      if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await sleep(POLL_MS + Math.floor(Math.random() * POLL_MS), signal);
    }
  }

  async unlock(): Promise<void> {
    clearInterval(this.#heartbeat);
    await this.#refreshing;
    this.#locker.held.delete(this.#id);
    const { client, bucket } = this.#locker.opts;
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.#key, ...(this.#etag ? { IfMatch: this.#etag } : {}) }));
    } catch (err) {
      // Someone took it over after our TTL lapsed: theirs now, leave it.
      if (!isConflict(err) && status(err) !== 404) throw err;
    }
  }

  #refresh(requestRelease: RequestRelease): void {
    const { client, bucket } = this.#locker.opts;
    this.#refreshing = client
      .send(new PutObjectCommand({ Bucket: bucket, Key: this.#key, Body: lockBody(), ContentType: 'application/json', ...(this.#etag ? { IfMatch: this.#etag } : {}) }))
      .then((res) => {
        this.#etag = res.ETag;
      })
      .catch(async (err: unknown) => {
        if (isConflict(err) || status(err) === 404) {
          // Lost the lock: stop writing rather than race the new holder.
          clearInterval(this.#heartbeat);
          await requestRelease();
        }
        // A transient error: the next beat retries, well within the TTL.
      });
  }

  async #takeOverIfStale(ttlMs: number): Promise<void> {
    const { client, bucket } = this.#locker.opts;
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: this.#key }));
      const age = Date.now() - (head.LastModified?.getTime() ?? Date.now());
      if (age > ttlMs && head.ETag) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.#key, IfMatch: head.ETag }));
      }
    } catch (err) {
      if (!isConflict(err) && status(err) !== 404) throw err;
    }
  }
}

function lockBody(): string {
  return JSON.stringify({ token: randomUUID(), at: new Date().toISOString() });
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** 412 Precondition Failed, or 409 when a concurrent conditional write is in progress. */
function isConflict(err: unknown): boolean {
  const s = status(err);
  return s === 412 || s === 409;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
