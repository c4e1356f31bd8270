// Revocation by not-before time, per subject and per tenant, kept in the
// storage backend so every instance sees it:
//
//   <prefix>/_system/revocations/subjects/<sha256(subject)>.json
//   <prefix>/_system/revocations/tenants/<tenant>.json
//
// each holding { notBefore } in seconds since the epoch. A token (or API key)
// whose issue time is before the larger of its subject's and tenant's
// not-before is refused. Reads are cached for `ttlMs`, so a bump reaches every
// instance within that time; the instance that writes it sees it at once.
// The cache is bounded (MAX_ENTRIES, oldest evicted) and concurrent misses for
// one key share one read. A storage failure fails closed (503), never open.

import { createHash } from 'node:crypto';
import { SluiceError } from '../../errors.ts';
import type { CoreLog } from '../ingest.ts';
import type { RevocationBus } from './revocation-bus.ts';
import { bytesOf, readSmallObject, type Storage } from '../../storage/storage.ts';
import { isTenant, systemPrefix } from '../keys.ts';

const MAX_ENTRIES = 10_000;

export interface RevokeRequest {
  subject?: string | undefined;
  tenant?: string | undefined;
}

export interface Revocation {
  kind: 'subject' | 'tenant';
  value: string;
  /** Tokens issued before this second (epoch seconds) are refused. */
  notBefore: number;
}

interface Entry {
  expires: number;
  value: Promise<number>;
}

export class RevocationStore {
  readonly #storage: Storage;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, Entry>();
  #bus: { bus: RevocationBus; log: CoreLog } | undefined;

  constructor(storage: Storage, keyPrefix: string, ttlMs: number, now: () => number = Date.now) {
    this.#storage = storage;
    this.#prefix = `${systemPrefix(keyPrefix)}revocations/`;
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Publish revocations made here, and drop cached entries when any instance revokes, so a revocation holds everywhere at once. */
  async useBus(bus: RevocationBus, log: CoreLog): Promise<void> {
    this.#bus = { bus, log };
    await bus.subscribe(
      (r) => {
        if (r.kind === 'subject') this.#cache.delete(this.subjectKey(r.value));
        else if (isTenant(r.value)) this.#cache.delete(this.tenantKey(r.value));
        else this.#cache.clear();
      },
      () => this.#cache.clear(),
    );
  }

  subjectKey(subject: string): string {
    return `${this.#prefix}subjects/${createHash('sha256').update(subject, 'utf8').digest('hex')}.json`;
  }

  tenantKey(tenant: string): string {
    if (!isTenant(tenant)) throw new SluiceError('INVALID_INPUT', { message: 'Not a valid tenant' });
    return `${this.#prefix}tenants/${tenant}.json`;
  }

  /** The not-before (epoch seconds) that applies to this subject in this tenant; 0 when none. */
  async notBefore(p: { subject: string; tenant: string }): Promise<number> {
    const [s, t] = await Promise.all([this.#read(this.subjectKey(p.subject)), this.#read(this.tenantKey(p.tenant))]);
    return Math.max(s, t);
  }

  /** Refuse every token issued up to now. Not-before only moves forward. */
  async revoke(req: RevokeRequest): Promise<Revocation[]> {
    // The next whole second: tokens carry iat in whole seconds, floored.
    const notBefore = Math.floor(this.#now() / 1000) + 1;
    const out: Revocation[] = [];
    if (req.subject !== undefined) out.push(await this.#bump(this.subjectKey(req.subject), 'subject', req.subject, notBefore));
    if (req.tenant !== undefined) out.push(await this.#bump(this.tenantKey(req.tenant), 'tenant', req.tenant, notBefore));
    // Written to storage already: a lost message only means the others wait for their cache time.
    await this.#bus?.bus.publish(out).catch((err: unknown) => this.#bus?.log.warn({ err }, 'revocation stored but not published; other instances see it within the cache time'));
    return out;
  }

  async #bump(key: string, kind: Revocation['kind'], value: string, notBefore: number): Promise<Revocation> {
    const current = await this.#load(key);
    const next = Math.max(current, notBefore);
    const body = Buffer.from(JSON.stringify({ [kind]: value, notBefore: next, revokedAt: new Date(this.#now()).toISOString() }) + '\n');
    await this.#storage.put(key, bytesOf(body), { contentType: 'application/json' });
    this.#set(key, Promise.resolve(next));
    return { kind, value, notBefore: next };
  }

  #read(key: string): Promise<number> {
    const hit = this.#cache.get(key);
    if (hit && hit.expires > this.#now()) return hit.value;
    const value = this.#load(key);
    this.#set(key, value);
    // A failed read is not cached: the next request tries again.
    value.catch(() => {
      if (this.#cache.get(key)?.value === value) this.#cache.delete(key);
    });
    return value;
  }

  #set(key: string, value: Promise<number>): void {
    this.#cache.delete(key);
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(key, { expires: this.#now() + this.#ttlMs, value });
  }

  async #load(key: string): Promise<number> {
    let raw: Buffer;
    try {
      raw = await readSmallObject(this.#storage, key, 64 * 1024);
    } catch (err) {
      if ((err as { code?: string }).code === 'FILE_NOT_FOUND') return 0;
      throw new SluiceError('STORAGE_UNAVAILABLE', { cause: err });
    }
    try {
      const n = (JSON.parse(raw.toString('utf8')) as { notBefore?: unknown }).notBefore;
      if (typeof n === 'number' && Number.isFinite(n)) return n;
    } catch {
      // fall through
    }
    // A damaged record must not reopen access: refuse everything it covers.
    return Number.MAX_SAFE_INTEGER;
  }
}
