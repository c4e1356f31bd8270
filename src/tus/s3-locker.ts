// A tus Locker held in the bucket itself, so several instances behind one
// load balancer can take PATCHes for the same upload: a request writes an
// upload only while its instance holds `<prefix>/_system/tus/locks/<tenant>/<id>`.
//
// - Acquire: PutObject with If-None-Match: * (S3 and MinIO conditional
//   writes): exactly one instance creates the lock object; the others get 412
//   and poll until it is gone or the acquire timeout passes (tus's
//   ERR_LOCK_TIMEOUT).
// - Lease: after a request ends, its instance keeps the lock for LINGER_MS, so
//   the client's next PATCH on the same instance (the usual case) takes it
//   back without a round trip; within the instance one request at a time holds
//   it. Another instance waits at most LINGER_MS longer.
// - Liveness: the holder rewrites the lock every TTL/3 with If-Match on its
//   own ETag. A lock older than TTL belongs to a dead instance and is deleted
//   with If-Match on the ETag that was seen stale, so two waiters cannot both
//   take it over. A holder whose refresh fails lost the lock: its request is
//   cancelled (tus stops the write) rather than writing without it.
// - Release: DeleteObject with If-Match on the holder's ETag; releaseAll() on
//   shutdown, so other instances need not wait for the TTL.
// Within one instance a waiter also asks the local holder to let go (the tus
// "request release" path), so a client resuming after a dropped connection
// does not wait for the dead request's socket to time out.

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
  /** How long an instance keeps an idle lock for the upload's next request. */
  lingerMs?: number;
}

const POLL_MS = 100;

interface Lease {
  key: string;
  etag: string | undefined;
  /** A request of this instance holds it now (else it lingers). */
  active: boolean;
  release: RequestRelease | undefined;
  heartbeat: NodeJS.Timeout;
  linger: NodeJS.Timeout | undefined;
  refreshing: Promise<void> | undefined;
}

export class S3Locker implements Locker {
  readonly opts: Required<S3LockerOptions>;
  /** Locks this instance holds, active or lingering. */
  readonly leases = new Map<string, Lease>();

  constructor(opts: S3LockerOptions) {
    this.opts = { ttlMs: 30_000, acquireTimeoutMs: 20_000, lingerMs: 1_000, ...opts };
  }

  /** The lease this instance holds on the upload (active or lingering), as an identity: a new one is a new object. */
  leaseOf(id: string): unknown {
    return this.leases.get(id);
  }

  newLock(id: string): Lock {
    return new S3Lock(this, id);
  }

  /** Give back every idle lock at once (shutdown). Active ones are released by their requests. */
  async releaseAll(): Promise<void> {
    for (const [id, lease] of [...this.leases]) if (!lease.active) await this.drop(id);
  }

  /** Delete a lingering lease's lock object. */
  async drop(id: string): Promise<void> {
    const lease = this.leases.get(id);
    if (!lease || lease.active) return;
    this.leases.delete(id);
    clearInterval(lease.heartbeat);
    clearTimeout(lease.linger);
    await lease.refreshing;
    try {
      await this.opts.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: lease.key, ...(lease.etag ? { IfMatch: lease.etag } : {}) }));
    } catch (err) {
      // Someone took it over after our TTL lapsed: theirs now, leave it.
      if (!isConflict(err) && status(err) !== 404) throw err;
    }
  }

  refresh(id: string, lease: Lease): void {
    const { client, bucket } = this.opts;
    lease.refreshing = client
      .send(new PutObjectCommand({ Bucket: bucket, Key: lease.key, Body: lockBody(), ContentType: 'application/json', ...(lease.etag ? { IfMatch: lease.etag } : {}) }))
      .then((res) => {
        lease.etag = res.ETag;
      })
      .catch(async (err: unknown) => {
        if (isConflict(err) || status(err) === 404) {
          // Lost the lock: forget it, and stop a request writing without it.
          clearInterval(lease.heartbeat);
          clearTimeout(lease.linger);
          if (this.leases.get(id) === lease) this.leases.delete(id);
          await lease.release?.();
        }
        // A transient error: the next beat retries, well within the TTL.
      });
  }
}

class S3Lock implements Lock {
  readonly #locker: S3Locker;
  readonly #id: string;

  constructor(locker: S3Locker, id: string) {
    this.#locker = locker;
    this.#id = id;
  }

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const locker = this.#locker;
    const { client, bucket, ttlMs, acquireTimeoutMs } = locker.opts;
    const key = locker.opts.keyFor(this.#id);
    const deadline = Date.now() + acquireTimeoutMs;
    let askedLocalHolder = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      const lease = locker.leases.get(this.#id);
      if (lease && !lease.active) {
        // Ours and idle: take it back without a round trip.
        clearTimeout(lease.linger);
        lease.linger = undefined;
        lease.active = true;
        lease.release = requestRelease;
        return;
      }
      if (lease) {
        if (!askedLocalHolder) {
          askedLocalHolder = true;
          await lease.release?.();
        }
      } else {
        try {
          const res = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: lockBody(), ContentType: 'application/json', IfNoneMatch: '*' }));
          const fresh: Lease = {
            key,
            etag: res.ETag,
            active: true,
            release: requestRelease,
            heartbeat: setInterval(() => locker.refresh(this.#id, fresh), Math.max(1000, Math.floor(ttlMs / 3))).unref(),
            linger: undefined,
            refreshing: undefined,
          };
          locker.leases.set(this.#id, fresh);
          return;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
        await this.#takeOverIfStale(key, ttlMs);
      }
      if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await sleep(POLL_MS + Math.floor(Math.random() * POLL_MS), signal);
    }
  }

  async unlock(): Promise<void> {
    const locker = this.#locker;
    const lease = locker.leases.get(this.#id);
    if (!lease || !lease.active) return;
    lease.active = false;
    lease.release = undefined;
    lease.linger = setTimeout(() => {
      locker.drop(this.#id).catch(() => {
        // Left to expire: other instances take it over after the TTL.
      });
    }, locker.opts.lingerMs);
    lease.linger.unref();
  }

  async #takeOverIfStale(key: string, ttlMs: number): Promise<void> {
    const { client, bucket } = this.#locker.opts;
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const age = Date.now() - (head.LastModified?.getTime() ?? Date.now());
      if (age > ttlMs && head.ETag) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: head.ETag }));
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
