// Caps the uploads one tenant runs at once, so one tenant cannot take every
// buffer-budget slot and socket from the others. Counted in this process: a
// tenant's cap across N instances is N × the setting (with SLUICE_REDIS_URL the
// Redis leases of redis/upload-slots.ts make it one cap for all of them).

import { SluiceError } from '../../errors.ts';
import type { ReleaseSlot, UploadSlots } from './upload-slots.ts';

export class EmbeddedUploadSlots implements UploadSlots {
  readonly #max: number;
  readonly #inUse = new Map<string, number>();

  /** `max` 0 means no cap. */
  constructor(max: number) {
    this.#max = max;
  }

  async inUse(tenant: string): Promise<number> {
    return this.#count(tenant);
  }

  #count(tenant: string): number {
    return this.#inUse.get(tenant) ?? 0;
  }

  async acquire(tenant: string): Promise<ReleaseSlot> {
    const n = this.#count(tenant);
    if (this.#max > 0 && n >= this.#max) throw tooManyUploads(this.#max);
    this.#inUse.set(tenant, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.#count(tenant) - 1;
      if (left <= 0) this.#inUse.delete(tenant);
      else this.#inUse.set(tenant, left);
    };
  }
}

export function tooManyUploads(limit: number): SluiceError {
  return new SluiceError('TOO_MANY_UPLOADS', { headers: { 'retry-after': '1' }, details: { limit } });
}
