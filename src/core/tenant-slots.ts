// Caps the uploads one tenant runs at once, so one tenant cannot take every
// buffer-budget slot and socket from the others. Counted per process; a
// tenant's cap across N instances is N × the setting.

import { SluiceError } from '../errors.ts';

export class TenantSlots {
  readonly #max: number;
  readonly #inUse = new Map<string, number>();

  /** `max` 0 means no cap. */
  constructor(max: number) {
    this.#max = max;
  }

  inUse(tenant: string): number {
    return this.#inUse.get(tenant) ?? 0;
  }

  /** Take a slot or throw TOO_MANY_UPLOADS. The returned release is idempotent. */
  acquire(tenant: string): () => void {
    const n = this.inUse(tenant);
    if (this.#max > 0 && n >= this.#max) {
      throw new SluiceError('TOO_MANY_UPLOADS', { headers: { 'retry-after': '1' }, details: { limit: this.#max } });
    }
    this.#inUse.set(tenant, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.inUse(tenant) - 1;
      if (left <= 0) this.#inUse.delete(tenant);
      else this.#inUse.set(tenant, left);
    };
  }
}
