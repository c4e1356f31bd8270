// Who handles a file's jobs when several processes share one store without a
// queue service (--workers N with the embedded queue: each process rescans the
// same markers). A process handles a file only while it holds the file's lease:
// an object under `_system/leases/jobs/` written through the storage port's
// conditional writes (ifAbsent to take a free lease, ifMatch to take over an
// expired one or to renew), so two processes never run one file's jobs, or
// deliver its webhook, at once. A process that dies leaves its lease to expire
// after LEASE_MS; another process's rescan then takes the file over.
// Cost: two or three small writes per file handled, plus one per LEASE_MS / 3 while it runs.

import { randomUUID } from 'node:crypto';
import { isSluiceError } from '../errors.ts';
import { systemPrefix } from '../core/keys.ts';
import { bytesOf, readSmallObjectVersion, type ConditionalWrites, type Storage } from '../storage/storage.ts';
import type { FileRef } from './queue.ts';

/** Lifetime of a lease not renewed; renewed every third of it while the file is handled. */
export const LEASE_MS = 30_000;

interface LeaseBody {
  owner: string;
  expiresAt: number;
}

export interface HeldLease {
  /** False once another process took the lease over (renewal failed). */
  readonly held: boolean;
  release(): Promise<void>;
}

export class FileLeases {
  readonly #storage: Storage & ConditionalWrites;
  readonly #prefix: string;
  readonly #owner = randomUUID();
  readonly #ttlMs: number;

  constructor(storage: Storage & ConditionalWrites, keyPrefix: string, ttlMs = LEASE_MS) {
    this.#storage = storage;
    // Not under the marker prefix (_system/jobs/): rescans list that.
    this.#prefix = `${systemPrefix(keyPrefix)}leases/jobs/`;
    this.#ttlMs = ttlMs;
  }

  /** Take the file's lease; undefined when another live process holds it. */
  async claim(ref: FileRef): Promise<HeldLease | undefined> {
    const key = `${this.#prefix}${ref.tenant}/${ref.id}`;
    let etag = await this.#write(key, { ifAbsent: true });
    if (etag === undefined) {
      const cur = await this.#read(key);
      if (!cur || cur.body.expiresAt > Date.now()) return undefined;
      etag = await this.#write(key, { ifMatch: cur.etag });
      if (etag === undefined) return undefined;
    }
    let held = true;
    let current = etag;
    const timer = setInterval(() => {
      void this.#write(key, { ifMatch: current }).then(
        (next) => {
          if (next === undefined) held = false;
          else current = next;
        },
        () => {}, // storage down: keep trying; the lease may lapse, which only lets another process retry the file
      );
    }, Math.max(1000, Math.floor(this.#ttlMs / 3)));
    timer.unref();
    return {
      get held() {
        return held;
      },
      release: async () => {
        clearInterval(timer);
        // Deleted, so leases do not pile up (unconditionally: MinIO ignores If-Match on delete).
        // A live holder renews long before expiry, so the lease is still ours here unless this
        // process stalled past LEASE_MS; a process that claims the file next finds its work
        // done, or resumes what is left (handling a file is idempotent).
        if (held) await this.#storage.delete(key).catch(() => undefined);
      },
    };
  }

  async #write(key: string, condition: { ifAbsent: true } | { ifMatch: string }, expiresAt = Date.now() + this.#ttlMs): Promise<string | undefined> {
    const body: LeaseBody = { owner: this.#owner, expiresAt };
    try {
      const r = await this.#storage.putIf(key, bytesOf(Buffer.from(JSON.stringify(body))), { contentType: 'application/json', condition });
      return r.etag;
    } catch (err) {
      if (isSluiceError(err) && err.code === 'WRITE_CONFLICT') return undefined;
      throw err;
    }
  }

  async #read(key: string): Promise<{ body: LeaseBody; etag: string } | undefined> {
    try {
      const r = await readSmallObjectVersion(this.#storage, key, 64 * 1024);
      return r.etag === undefined ? undefined : { body: JSON.parse(r.bytes.toString('utf8')) as LeaseBody, etag: r.etag };
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return undefined;
      throw err;
    }
  }
}
