// Optional per-tenant storage quota. A tenant's usage is the size of every
// object under `<prefix>/<tenant>/` (originals, manifests, variants), listed
// from storage and cached for `ttlMs`, plus the bytes this instance has
// written since (in flight or committed). The quota is enforced by wrapping
// the storage port: every put under a tenant's prefix counts its bytes as they
// stream and fails with QUOTA_EXCEEDED the moment the tenant would pass its
// quota, which makes the adapter abort the write and leave nothing behind.
// Uploads whose Content-Length already exceeds what is left are refused before
// their body is read (http/plugins/upload-limits.ts).
//
// Across instances the quota is soft: each instance sees the others' writes
// only when it next lists (within `ttlMs`).

import { SluiceError } from '../errors.ts';
import type { PutOptions, PutResult, Storage } from '../storage/storage.ts';
import { isTenant } from './keys.ts';

interface Usage {
  /** Bytes listed from storage, and when. */
  listed: number;
  listedAt: number;
  /** Bytes this instance wrote (or is writing) since that listing. */
  since: number;
}

export class TenantQuota {
  readonly limitBytes: number;
  readonly #storage: Storage;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #usage = new Map<string, Usage>();
  readonly #listing = new Map<string, Promise<Usage>>();

  constructor(storage: Storage, keyPrefix: string, limitBytes: number, ttlMs: number) {
    this.#storage = storage;
    this.#prefix = `${keyPrefix}/`;
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
    const u = await this.#current(tenant);
    return this.limitBytes - u.listed - u.since;
  }

  /** Forget the listing (after a delete), so the next check lists again. */
  invalidate(tenant: string): void {
    this.#usage.delete(tenant);
  }

  async #current(tenant: string): Promise<Usage> {
    const u = this.#usage.get(tenant);
    if (u && Date.now() - u.listedAt < this.#ttlMs) return u;
    let pending = this.#listing.get(tenant);
    if (!pending) {
      pending = this.#list(tenant).finally(() => this.#listing.delete(tenant));
      this.#listing.set(tenant, pending);
    }
    return pending;
  }

  async #list(tenant: string): Promise<Usage> {
    const prefix = `${this.#prefix}${tenant}/`;
    let listed = 0;
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#storage.list({ prefix, startAfter, limit: 1000 });
      for (const o of page.objects) listed += o.size;
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1)!.key;
    }
    // Writes still in flight stay counted; committed ones are now in the listing.
    const inFlight = this.#inFlight.get(tenant) ?? 0;
    const u = { listed, listedAt: Date.now(), since: inFlight };
    this.#usage.set(tenant, u);
    return u;
  }

  readonly #inFlight = new Map<string, number>();

  /** A put's body, counted against the tenant's quota; throws QUOTA_EXCEEDED past it. */
  async *meter(tenant: string, body: AsyncIterable<Uint8Array>, done: { bytes: number }): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      const u = await this.#current(tenant);
      if (u.listed + u.since + chunk.byteLength > this.limitBytes) {
        throw new SluiceError('QUOTA_EXCEEDED', { details: { quotaBytes: this.limitBytes } });
      }
      u.since += chunk.byteLength;
      done.bytes += chunk.byteLength;
      this.#inFlight.set(tenant, (this.#inFlight.get(tenant) ?? 0) + chunk.byteLength);
      yield chunk;
    }
  }

  /** After a put: its bytes are no longer in flight; on failure they are not used either. */
  settle(tenant: string, bytes: number, ok: boolean): void {
    const left = (this.#inFlight.get(tenant) ?? 0) - bytes;
    if (left > 0) this.#inFlight.set(tenant, left);
    else this.#inFlight.delete(tenant);
    if (!ok) {
      const u = this.#usage.get(tenant);
      if (u) u.since = Math.max(0, u.since - bytes);
    }
  }
}

/** The storage port with every tenant put metered; everything else (optional capabilities too) passes through. */
export function withTenantQuota(storage: Storage, quota: TenantQuota): Storage {
  const put = async (key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> => {
    const tenant = quota.tenantOf(key);
    if (tenant === undefined) return storage.put(key, body, opts);
    const done = { bytes: 0 };
    let ok = false;
    try {
      const result = await storage.put(key, quota.meter(tenant, body, done), opts);
      ok = true;
      return result;
    } finally {
      quota.settle(tenant, done.bytes, ok);
    }
  };
  const del = async (key: string): Promise<void> => {
    await storage.delete(key);
    const tenant = quota.tenantOf(key);
    if (tenant !== undefined) quota.invalidate(tenant);
  };
  return new Proxy(storage, {
    get(target, prop) {
      if (prop === 'put') return put;
      if (prop === 'delete') return del;
      const v: unknown = Reflect.get(target, prop, target);
      // Adapters keep state in private fields: call their methods on the adapter itself.
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
