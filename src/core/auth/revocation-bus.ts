// How a revocation written on one instance reaches the others' caches. Without
// Redis there is no bus: other instances see a revocation when their cached
// read expires (SLUICE_AUTH_REVOCATION_CACHE_MS). With Redis, redis/revocation-bus.ts
// publishes each one and every instance drops the cached entry at once.

import type { Revocation } from './revocations.ts';

export interface RevocationBus {
  publish(revocations: readonly Revocation[]): Promise<void>;
  /**
   * `onRevoked` runs for every revocation published by any instance (this one
   * too); `onGap` when messages may have been missed (the bus reconnected), so
   * the cache should be dropped whole.
   */
  subscribe(onRevoked: (r: Revocation) => void, onGap: () => void): Promise<void>;
}
