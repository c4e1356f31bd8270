// The per-tenant cap on concurrent uploads, as a port. Two implementations:
//   embedded-upload-slots.ts  counted in this process (no Redis): the cap is per instance
//   redis/upload-slots.ts     leases in Redis shared by every instance, expiring if a node dies
// test/contract/upload-slots-contract.ts holds both to the same behaviour.

/** Gives the slot back. Idempotent. */
export type ReleaseSlot = () => void;

export interface UploadSlots {
  /** Take one of the tenant's slots, or throw TOO_MANY_UPLOADS (or LIMITS_UNAVAILABLE when the shared store is down and limits fail closed). */
  acquire(tenant: string): Promise<ReleaseSlot>;
  /** Slots the tenant holds now, as this implementation sees them. */
  inUse(tenant: string): Promise<number>;
}
