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
// A waiter asks the holder to let go (the tus "request release" path), so a
// client resuming after a dropped connection does not wait for the dead
// request's socket to time out:
// - within one instance, by calling the local holder's release at once;
// - across instances, through the lock object itself: the waiter rewrites it,
//   If-Match on the ETag it read, with the holder's token and
//   `releaseRequested`. The holder's next heartbeat (If-Match on its own ETag)
//   fails, it reads the object, finds its token asked to yield, ends its
//   request (keeping what arrived) and deletes the lock once the request has
//   let go, beating on meanwhile with the request kept in the body. No S3
//   request is added while nobody waits; a takeover waits about one heartbeat
//   (TTL/3). The request keeps the holder's last heartbeat time (`heldAt`),
//   so asking does not make a dead holder's lock look alive.

import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
  /** Written in the lock object: a waiter's release request names it, so it reaches this holder only. */
  token: string;
  etag: string | undefined;
  /** A waiter on another instance asked for the lock: once the request has let go, it is deleted, not kept lingering. */
  yielding: boolean;
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
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.opts.client.send(new DeleteObjectCommand({ Bucket: this.opts.bucket, Key: lease.key, ...(lease.etag ? { IfMatch: lease.etag } : {}) }));
        return;
      } catch (err) {
        // Someone took it over after our TTL lapsed: theirs now, leave it.
        if (!isConflict(err) && status(err) !== 404) throw err;
        // Or a waiter asked for it, which changed its ETag: still ours to delete.
        if (status(err) === 404 || !(await this.askedToYield(lease))) return;
      }
    }
  }

  /** Whether the lock object now holds a waiter's release request for this lease (and, if so, its ETag becomes the lease's). */
  async askedToYield(lease: Lease): Promise<boolean> {
    const seen = await readLock(this.opts.client, this.opts.bucket, lease.key);
    if (!seen?.body.releaseRequested || seen.body.token !== lease.token) return false;
    lease.etag = seen.etag;
    return true;
  }

  refresh(id: string, lease: Lease): void {
    const { client, bucket } = this.opts;
    lease.refreshing = client
      .send(new PutObjectCommand({ Bucket: bucket, Key: lease.key, Body: lockBody(lease.token, lease.yielding), ContentType: 'application/json', ...(lease.etag ? { IfMatch: lease.etag } : {}) }))
      .then((res) => {
        lease.etag = res.ETag;
      })
      .catch(async (err: unknown) => {
        if (isConflict(err) && (await this.askedToYield(lease).catch(() => false))) {
          // Another instance waits: end our request (its bytes are kept); unlock then deletes the lock.
          // Until then the heartbeat goes on, keeping the request pending: a holder that cannot let go
          // at once (a finish, whose release is a no-op) must not look dead to the waiter.
          lease.yielding = true;
          lease.refreshing = undefined;
          if (lease.active) await lease.release?.();
          else await this.drop(id);
          return;
        }
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
    let askedRemoteHolder = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      const lease = locker.leases.get(this.#id);
      if (lease && !lease.active && !lease.yielding) {
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
          const token = randomUUID();
          const res = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: lockBody(token), ContentType: 'application/json', IfNoneMatch: '*' }));
          const fresh: Lease = {
            key,
            token,
            etag: res.ETag,
            yielding: false,
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
        askedRemoteHolder = (await this.#takeOverIfStale(key, ttlMs, !askedRemoteHolder)) || askedRemoteHolder;
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
    if (lease.yielding) {
      // Another instance is waiting for it: no lingering for our own next request.
      await locker.drop(this.#id).catch(() => {});
      return;
    }
    lease.linger = setTimeout(() => {
      locker.drop(this.#id).catch(() => {
        // Left to expire: other instances take it over after the TTL.
      });
    }, locker.opts.lingerMs);
    lease.linger.unref();
  }

  /**
   * Deletes the lock if its holder is dead (no heartbeat for the TTL); otherwise,
   * if `ask`, writes a release request to the holder. Returns whether one was written.
   */
  async #takeOverIfStale(key: string, ttlMs: number, ask: boolean): Promise<boolean> {
    const { client, bucket } = this.#locker.opts;
    try {
      const seen = await readLock(client, bucket, key);
      if (!seen) return false;
      const asked = seen.body.heldAt ? Date.parse(seen.body.heldAt) : Number.NaN;
      const heldAt = Number.isNaN(asked) ? seen.lastModified : asked;
      if (Date.now() - heldAt > ttlMs) {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: seen.etag }));
        return false;
      }
      if (!ask || seen.body.releaseRequested || !seen.body.token) return seen.body.releaseRequested === true;
      const request: LockBody = { token: seen.body.token, at: new Date().toISOString(), releaseRequested: true, heldAt: new Date(heldAt).toISOString() };
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(request), ContentType: 'application/json', IfMatch: seen.etag }));
      return true;
    } catch (err) {
      // The holder beat or let go in between: the next poll looks again.
      if (!isConflict(err) && status(err) !== 404) throw err;
      return false;
    }
  }
}

interface LockBody {
  token?: string;
  at?: string;
  releaseRequested?: boolean;
  /** In a waiter's release request: the time (the store's clock) of the holder's last heartbeat, which staleness is judged by. */
  heldAt?: string;
}

/** The holder's heartbeat; while it yields it keeps the release request (staleness then judged by the write's own time). */
function lockBody(token: string, yielding = false): string {
  return JSON.stringify({ token, at: new Date().toISOString(), ...(yielding ? { releaseRequested: true } : {}) } satisfies LockBody);
}

/** The lock object's body, ETag and time of last write; undefined when there is none. */
async function readLock(client: S3Client, bucket: string, key: string): Promise<{ body: LockBody; etag: string; lastModified: number } | undefined> {
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const text = (await res.Body?.transformToString()) ?? '';
    let body: LockBody = {};
    try {
      body = JSON.parse(text) as LockBody;
    } catch {
      // Unreadable: judged by its age alone.
    }
    return { body, etag: res.ETag ?? '', lastModified: res.LastModified?.getTime() ?? Date.now() };
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
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
