// Optional per-tenant storage quota. The quota is enforced by wrapping the
// storage port: every put under a tenant's prefix counts its bytes as they
// stream and fails with QUOTA_EXCEEDED the moment the tenant would pass its
// quota, which makes the adapter abort the write and leave nothing behind.
// Uploads whose Content-Length already exceeds what is left are refused before
// their body is read (http/plugins/upload-limits.ts).
//
// A tenant's usage is one record kept through the storage port,
// `<prefix>/_system/usage/<tenant>.json` ({ bytes }), changed by
// compare-and-swap (ConditionalWrites putIf ifMatch, retried on conflict):
// +size when a put or putIf commits (putIf ifMatch: new size − old size),
// −size when an object is deleted. Each instance re-reads the record (one GET)
// when its cached copy is older than `ttlMs`, and adds its own in-flight bytes.
// The tenant's objects are listed (a recount) only when the record is missing
// or on an explicit reconcile(), never on the request path per cache expiry.
//
// Exact: usage changed through this wrapper, across instances (CAS). Approximate,
// until reconcile(): a crash between a commit and its record update; a plain put
// over an existing key (counted again; tenant keys are fresh ids); objects
// written or removed around the wrapper (another tool on the bucket). Across
// instances the quota is soft within `ttlMs` (in-flight bytes of others are unseen).
//
// With SLUICE_REDIS_URL the committed bytes are also a Redis counter
// (`<redis prefix>:quota:<tenant>`, INCRBY/DECRBY on the commands connection),
// shared by every instance: a request's first check reads it, so another
// instance's commit or delete counts at once, not after `ttlMs`. A missing
// counter (first use, Redis restarted or flushed) is seeded from the storage
// record (or a recount when that is missing too), which stays the durable copy.
// While Redis is unreachable the quota falls back to the storage record.

import { SluiceError } from '../errors.ts';
import type { Redis } from 'ioredis';
import type { ConditionalWrites, PutOptions, PutResult, Storage, WriteCondition } from '../storage/storage.ts';
import { isTenant } from './keys.ts';

interface View {
  /** Committed bytes: the record as last read or written, plus this instance's deltas since. */
  bytes: number;
  readAt: number;
}

interface RecordRead {
  bytes: number;
  etag: string;
}

const CAS_ATTEMPTS = 20;

/** The shared counter: a Redis connection and the key of a tenant's counter. */
export interface UsageCounter {
  redis: Redis;
  key: (tenant: string) => string;
}

// KEYS[1] counter; ARGV[1] delta. The new value, or nil when the counter is missing (to be seeded).
const ADD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local d = tonumber(ARGV[1])
if d < 0 then return redis.call('DECRBY', KEYS[1], -d) end
return redis.call('INCRBY', KEYS[1], d)
`;

function isCode(err: unknown, code: string): boolean {
  return err instanceof SluiceError && err.code === code;
}

async function* once(buf: Buffer): AsyncGenerator<Uint8Array> {
  yield buf;
}

export class TenantQuota {
  readonly limitBytes: number;
  readonly #storage: Storage & ConditionalWrites;
  readonly #prefix: string;
  readonly #usagePrefix: string;
  readonly #ttlMs: number;
  readonly #view = new Map<string, View>();
  readonly #reading = new Map<string, Promise<View>>();
  readonly #inFlight = new Map<string, number>();
  /** Committed deltas not yet in the record. */
  readonly #pending = new Map<string, number>();
  readonly #flushing = new Map<string, Promise<void>>();
  readonly #counter: UsageCounter | undefined;

  constructor(storage: Storage & ConditionalWrites, keyPrefix: string, limitBytes: number, ttlMs: number, counter?: UsageCounter) {
    this.#storage = storage;
    this.#counter = counter;
    this.#prefix = `${keyPrefix}/`;
    this.#usagePrefix = `${keyPrefix}/_system/usage/`;
    this.limitBytes = limitBytes;
    this.#ttlMs = ttlMs;
  }

  /** The tenant a storage key belongs to, or undefined for service keys (_system). */
  tenantOf(key: string): string | undefined {
    if (!key.startsWith(this.#prefix)) return undefined;
    const tenant = key.slice(this.#prefix.length).split('/', 1)[0]!;
    return isTenant(tenant) ? tenant : undefined;
  }

  async remaining(tenant: string): Promise<number> {
    const v = await this.#current(tenant, true);
    return this.limitBytes - v.bytes - (this.#inFlight.get(tenant) ?? 0);
  }

  /** Committed bytes of the tenant as this instance sees them (record + own deltas). */
  async used(tenant: string): Promise<number> {
    return (await this.#current(tenant)).bytes;
  }

  /** Recount the tenant's objects (a listing) and store that as its usage. For an admin or the reaper. */
  async reconcile(tenant: string): Promise<number> {
    await this.#flushing.get(tenant);
    const bytes = await this.#recount(tenant);
    for (let i = 0; ; i++) {
      const rec = await this.#read(tenant);
      try {
        await this.#write(tenant, bytes, rec ? { ifMatch: rec.etag } : { ifAbsent: true });
        break;
      } catch (err) {
        if (!isCode(err, 'WRITE_CONFLICT') || i >= CAS_ATTEMPTS) throw err;
      }
    }
    if (this.#counter) await this.#counter.redis.set(this.#counter.key(tenant), String(bytes));
    this.#view.set(tenant, { bytes: bytes + (this.#pending.get(tenant) ?? 0), readAt: Date.now() });
    return bytes;
  }

  /** `fresh`: with a shared counter, read it now (a request's first check) rather than trust the cached copy. */
  async #current(tenant: string, fresh = false): Promise<View> {
    const v = this.#view.get(tenant);
    if (v && !(fresh && this.#counter) && Date.now() - v.readAt < this.#ttlMs) return v;
    let pending = this.#reading.get(tenant);
    if (!pending) {
      pending = this.#load(tenant).finally(() => this.#reading.delete(tenant));
      this.#reading.set(tenant, pending);
    }
    return pending;
  }

  async #load(tenant: string): Promise<View> {
    if (this.#counter) {
      try {
        const got = await this.#counter.redis.get(this.#counter.key(tenant));
        const bytes = got === null ? await this.#seed(tenant) : Number(got);
        const v = { bytes: Math.max(0, bytes), readAt: Date.now() };
        this.#view.set(tenant, v);
        return v;
      } catch {
        // Redis unreachable: the storage record below.
      }
    }
    return this.#loadRecord(tenant);
  }

  /** Set a missing counter from the storage record (recounted if missing too); another instance's seed wins. */
  async #seed(tenant: string): Promise<number> {
    const { bytes } = await this.#loadRecord(tenant);
    const key = this.#counter!.key(tenant);
    await this.#counter!.redis.set(key, String(bytes), 'NX');
    return Number((await this.#counter!.redis.get(key)) ?? bytes);
  }

  async #loadRecord(tenant: string): Promise<View> {
    let rec = await this.#read(tenant);
    if (!rec) {
      // No record yet (first use, or removed): the one place a request lists.
      const bytes = await this.#recount(tenant);
      try {
        await this.#write(tenant, bytes, { ifAbsent: true });
        rec = { bytes, etag: '' };
      } catch (err) {
        if (!isCode(err, 'WRITE_CONFLICT')) throw err;
        rec = (await this.#read(tenant)) ?? { bytes, etag: '' };
      }
    }
    const v = { bytes: rec.bytes + (this.#pending.get(tenant) ?? 0), readAt: Date.now() };
    this.#view.set(tenant, v);
    return v;
  }

  #key(tenant: string): string {
    return `${this.#usagePrefix}${tenant}.json`;
  }

  async #read(tenant: string): Promise<RecordRead | null> {
    let got;
    try {
      got = await this.#storage.get(this.#key(tenant));
    } catch (err) {
      if (isCode(err, 'FILE_NOT_FOUND')) return null;
      throw err;
    }
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { bytes?: unknown };
    const bytes = typeof parsed.bytes === 'number' && Number.isFinite(parsed.bytes) ? Math.max(0, parsed.bytes) : 0;
    return { bytes, etag: got.etag ?? '' };
  }

  async #write(tenant: string, bytes: number, condition: WriteCondition): Promise<void> {
    const body = Buffer.from(JSON.stringify({ bytes, updatedAt: new Date().toISOString() }));
    await this.#storage.putIf(this.#key(tenant), once(body), { contentType: 'application/json', sizeHint: body.length, condition });
  }

  async #recount(tenant: string): Promise<number> {
    const prefix = `${this.#prefix}${tenant}/`;
    let bytes = 0;
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#storage.list({ prefix, startAfter, limit: 1000 });
      for (const o of page.objects) bytes += o.size;
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1)!.key;
    }
    return bytes;
  }

  /** A put's body, counted against the tenant's quota; throws QUOTA_EXCEEDED past it. */
  async *meter(tenant: string, body: AsyncIterable<Uint8Array>, done: { bytes: number }): AsyncGenerator<Uint8Array> {
    let first = true;
    for await (const chunk of body) {
      const v = await this.#current(tenant, first);
      first = false;
      const inFlight = this.#inFlight.get(tenant) ?? 0;
      if (v.bytes + inFlight + chunk.byteLength > this.limitBytes) {
        throw new SluiceError('QUOTA_EXCEEDED', { details: { quotaBytes: this.limitBytes } });
      }
      done.bytes += chunk.byteLength;
      this.#inFlight.set(tenant, inFlight + chunk.byteLength);
      yield chunk;
    }
  }

  /** After a metered put: its bytes are no longer in flight; committed ones are added to the usage. */
  async settle(tenant: string, bytes: number, committed: number | undefined): Promise<void> {
    const left = (this.#inFlight.get(tenant) ?? 0) - bytes;
    if (left > 0) this.#inFlight.set(tenant, left);
    else this.#inFlight.delete(tenant);
    if (committed !== undefined) await this.add(tenant, committed);
  }

  /**
   * Change the tenant's usage by `delta` bytes: at once in this instance's view,
   * and in the record by compare-and-swap. Never throws: a record update that
   * fails stays pending and goes with the next one (reconcile() fixes a lost one).
   */
  async add(tenant: string, delta: number): Promise<void> {
    if (delta === 0) return;
    const v = this.#view.get(tenant);
    if (v) v.bytes = Math.max(0, v.bytes + delta);
    this.#pending.set(tenant, (this.#pending.get(tenant) ?? 0) + delta);
    // One record update at a time per tenant and instance; deltas arriving meanwhile go together in the next.
    const next = (this.#flushing.get(tenant) ?? Promise.resolve()).then(() => this.#drain(tenant));
    this.#flushing.set(tenant, next);
    await next;
    if (this.#flushing.get(tenant) === next) this.#flushing.delete(tenant);
    // The record first: a counter seeded from it now already holds this delta.
    if (this.#counter) {
      try {
        const now = (await this.#counter.redis.eval(ADD, 1, this.#counter.key(tenant), String(delta))) as number | null;
        if (now === null) await this.#seed(tenant);
      } catch {
        // Redis unreachable: the record has it; the counter is set right by reconcile() or when seeded again.
      }
    }
  }

  async #drain(tenant: string): Promise<void> {
    const delta = this.#pending.get(tenant) ?? 0;
    if (delta === 0) return;
    this.#pending.delete(tenant);
    try {
      for (let i = 0; ; i++) {
        const rec = await this.#read(tenant);
        if (!rec) {
          // Missing: a recount already holds this change (it is committed).
          await this.#load(tenant);
          return;
        }
        const bytes = Math.max(0, rec.bytes + delta);
        try {
          await this.#write(tenant, bytes, { ifMatch: rec.etag });
          this.#view.set(tenant, { bytes: bytes + (this.#pending.get(tenant) ?? 0), readAt: Date.now() });
          return;
        } catch (err) {
          if (!isCode(err, 'WRITE_CONFLICT') || i >= CAS_ATTEMPTS) throw err;
        }
      }
    } catch {
      this.#pending.set(tenant, (this.#pending.get(tenant) ?? 0) + delta);
    }
  }
}

/** The storage port with every tenant put metered and every tenant write and delete counted; everything else passes through. */
export function withTenantQuota(storage: Storage & ConditionalWrites, quota: TenantQuota): Storage {
  const put = async (key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> => {
    const tenant = quota.tenantOf(key);
    if (tenant === undefined) return storage.put(key, body, opts);
    const done = { bytes: 0 };
    let committed: number | undefined;
    try {
      const result = await storage.put(key, quota.meter(tenant, body, done), opts);
      committed = result.size;
      return result;
    } finally {
      await quota.settle(tenant, done.bytes, committed);
    }
  };
  // Conditional writes (manifests) are small and not metered, but counted: the
  // listing a recount does sees them too, and their deletes are subtracted.
  const putIf: ConditionalWrites['putIf'] = async (key, body, opts) => {
    const tenant = quota.tenantOf(key);
    if (tenant === undefined) return storage.putIf(key, body, opts);
    const old = 'ifMatch' in opts.condition ? ((await storage.head(key))?.size ?? 0) : 0;
    const result = await storage.putIf(key, body, opts);
    await quota.add(tenant, result.size - old);
    return result;
  };
  const del = async (key: string): Promise<void> => {
    const tenant = quota.tenantOf(key);
    if (tenant === undefined) return storage.delete(key);
    const info = await storage.head(key);
    await storage.delete(key);
    if (info) await quota.add(tenant, -info.size);
  };
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'put') return put;
      if (prop === 'putIf') return putIf;
      if (prop === 'delete') return del;
      const v: unknown = Reflect.get(target, prop, target);
      // Adapters keep state in private fields: call their methods on the adapter itself.
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
