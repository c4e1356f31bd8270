// The per-tenant upload cap shared by every instance: each running upload
// holds a lease in a Redis sorted set per tenant (member: a random lease id,
// score: its expiry in Redis' own clock, so nodes' clocks never matter). An
// upload renews its lease every third of the lease time; a node that dies
// (SIGKILL, power) stops renewing, and its leases drop out of the count within
// SLUICE_UPLOAD_LEASE_MS. Expired leases are pruned by the acquire script
// itself: no sweeper, nothing that leaks.
//
// While Redis is unreachable the cap fails open (uploads go on uncounted) or
// closed (503 LIMITS_UNAVAILABLE), per SLUICE_REDIS_LIMITS_ON_ERROR.

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SluiceError } from '../errors.ts';
import type { CoreLog } from '../core/ingest.ts';
import { tooManyUploads } from '../core/limits/embedded-upload-slots.ts';
import type { ReleaseSlot, UploadSlots } from '../core/limits/upload-slots.ts';

// KEYS[1] lease set; ARGV: max (0: no cap), lease ms, lease id. 1 taken, 0 full.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max = tonumber(ARGV[1])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;
// KEYS[1] lease set; ARGV: lease ms, lease id. 1 renewed, 0 the lease had already expired.
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) < now then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;
const COUNT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
`;

type LeaseRedis = Redis & {
  sluiceAcquireSlot(key: string, max: number, leaseMs: number, id: string): Promise<number>;
  sluiceRenewSlot(key: string, leaseMs: number, id: string): Promise<number>;
  sluiceCountSlots(key: string): Promise<number>;
};

export interface RedisUploadSlotsOptions {
  redis: Redis;
  prefix: string;
  max: number;
  leaseMs: number;
  failMode: 'open' | 'closed';
  log: CoreLog;
  /** A Redis failure met by a limit check (counted as sluice_limiter_errors_total). */
  onError?: () => void;
}

export class RedisUploadSlots implements UploadSlots {
  readonly #redis: LeaseRedis;
  readonly #o: RedisUploadSlotsOptions;

  constructor(o: RedisUploadSlotsOptions) {
    this.#o = o;
    const r = o.redis as LeaseRedis;
    if (typeof r.sluiceAcquireSlot !== 'function') {
      r.defineCommand('sluiceAcquireSlot', { numberOfKeys: 1, lua: ACQUIRE });
      r.defineCommand('sluiceRenewSlot', { numberOfKeys: 1, lua: RENEW });
      r.defineCommand('sluiceCountSlots', { numberOfKeys: 1, lua: COUNT });
    }
    this.#redis = r;
  }

  #key(tenant: string): string {
    return `${this.#o.prefix}:uploads:${tenant}`;
  }

  async inUse(tenant: string): Promise<number> {
    return this.#redis.sluiceCountSlots(this.#key(tenant));
  }

  async acquire(tenant: string): Promise<ReleaseSlot> {
    const { max, leaseMs } = this.#o;
    const key = this.#key(tenant);
    const id = randomUUID();
    let taken: number;
    try {
      taken = await this.#redis.sluiceAcquireSlot(key, max, leaseMs, id);
    } catch (err) {
      return this.#failed(err);
    }
    if (taken !== 1) throw tooManyUploads(max);
    const renew = setInterval(() => {
      this.#redis.sluiceRenewSlot(key, leaseMs, id).then(
        (ok) => {
          if (ok !== 1) this.#o.log.warn({ tenant }, 'upload slot lease had expired (Redis was unreachable for longer than the lease); the upload goes on uncounted');
        },
        () => this.#o.onError?.(),
      );
    }, Math.max(250, Math.floor(leaseMs / 3)));
    renew.unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      // A lost release only keeps the slot until its lease expires.
      this.#redis.zrem(key, id).catch(() => this.#o.onError?.());
    };
  }

  #failed(err: unknown): ReleaseSlot {
    this.#o.onError?.();
    if (this.#o.failMode === 'closed') throw new SluiceError('LIMITS_UNAVAILABLE', { cause: err });
    return () => {};
  }
}
