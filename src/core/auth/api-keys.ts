// Static API keys for scripts. Only a key's sha256 is configured; a presented
// key is hashed and compared with every configured hash in constant time
// (timingSafeEqual, and no early exit), so neither the comparison nor the
// loop reveals how much of a key was right or which key was close.
//
// Keys are 256-bit random strings (`npm run api-key`), so a fast hash is
// enough: there is nothing to brute-force that a slow hash would protect.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Principal } from './principal.ts';
import { SCOPES } from './scopes.ts';

/** One configured key (SLUICE_AUTH_API_KEYS is a JSON array of these). */
export const apiKeyEntrySchema = z.object({
  /** Names the key in logs and revocations (subject `apikey:<id>`). */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  /** sha256 of the whole key, lowercase hex: the key itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  tenant: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  scopes: z.array(z.enum(SCOPES)).min(1),
  /** Acts as the key's issue time for revocation: a revocation after it refuses the key. */
  createdAt: z.iso.datetime().optional(),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

export const API_KEY_PREFIX = 'sk_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key and the config entry that accepts it. */
export function generateApiKey(entry: Omit<ApiKeyEntry, 'sha256' | 'createdAt'>, now = new Date()): { key: string; entry: ApiKeyEntry } {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, entry: { ...entry, sha256: hashApiKey(key), createdAt: now.toISOString() } };
}

export class ApiKeys {
  readonly #entries: { entry: ApiKeyEntry; hash: Buffer }[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#entries = entries.map((entry) => ({ entry, hash: Buffer.from(entry.sha256, 'hex') }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The principal for a presented key, or undefined. Constant time in the key's content. */
  verify(presented: string): Principal | undefined {
    const hash = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKeyEntry | undefined;
    for (const { entry, hash: want } of this.#entries) {
      // Every entry is compared; a match does not end the loop early.
      if (timingSafeEqual(hash, want) && found === undefined) found = entry;
    }
    if (!found) return undefined;
    return {
      subject: `apikey:${found.id}`,
      tenant: found.tenant,
      scopes: new Set(found.scopes),
      issuedAt: found.createdAt ? Math.floor(Date.parse(found.createdAt) / 1000) : 0,
      kind: 'api-key',
    };
  }
}
