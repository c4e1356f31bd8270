// Access keys for the S3-compatible endpoint (docs/s3-api.md). SigV4 is an
// HMAC, so the server must know each secret, unlike API keys, where a hash is
// enough. Nothing secret is configured per key: a key's secret is derived
// from one server secret (SLUICE_S3API_SECRET) and its access key id,
//   secret = base64url(HMAC-SHA256(SLUICE_S3API_SECRET, "sluice-s3-secret:" + id)),
// so the key list holds the same fields as SLUICE_AUTH_API_KEYS minus the hash,
// and a key is revoked by removing its entry (or by a revocation of its
// subject `s3key:<id>`, as for API keys).

import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Principal } from './principal.ts';
import { SCOPES } from './scopes.ts';

/** One configured access key (SLUICE_S3API_ACCESS_KEYS is a JSON array of these). */
export const s3AccessKeyEntrySchema = z.object({
  /** The access key id clients sign with (AKIA-like: 16-32 upper-case letters and digits). */
  id: z.string().regex(/^[A-Z0-9]{16,32}$/),
  /** The tenant whose virtual bucket the key reaches; the bucket name is the tenant. */
  tenant: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  scopes: z.array(z.enum(SCOPES)).min(1),
  /** Acts as the key's issue time for revocation. */
  createdAt: z.iso.datetime().optional(),
});
export type S3AccessKeyEntry = z.infer<typeof s3AccessKeyEntrySchema>;

export function deriveS3Secret(serverSecret: string, id: string): string {
  return createHmac('sha256', serverSecret).update(`sluice-s3-secret:${id}`, 'utf8').digest('base64url');
}

/** A new access key id, its secret and the config entry that accepts it. */
export function generateS3AccessKey(
  serverSecret: string,
  entry: Omit<S3AccessKeyEntry, 'id' | 'createdAt'>,
  now = new Date(),
): { accessKeyId: string; secretAccessKey: string; entry: S3AccessKeyEntry } {
  // 20 characters like AWS ids; "SK" marks a sluice key, the rest is 90 random bits in base32.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = `SK${[...randomBytes(18)].map((b) => alphabet[b & 31]).join('')}`;
  return { accessKeyId: id, secretAccessKey: deriveS3Secret(serverSecret, id), entry: { ...entry, id, createdAt: now.toISOString() } };
}

export interface S3Credential {
  principal: Principal;
  secretAccessKey: string;
}

export class S3AccessKeys {
  readonly #byId: Map<string, S3AccessKeyEntry>;
  readonly #serverSecret: string;

  constructor(entries: readonly S3AccessKeyEntry[], serverSecret: string) {
    this.#byId = new Map(entries.map((e) => [e.id, e]));
    this.#serverSecret = serverSecret;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** The key's principal and secret, or undefined for an unknown id. Ids are not secret; the signature proves the key. */
  lookup(id: string): S3Credential | undefined {
    const entry = this.#byId.get(id);
    if (!entry) return undefined;
    return {
      secretAccessKey: deriveS3Secret(this.#serverSecret, id),
      principal: {
        subject: `s3key:${entry.id}`,
        tenant: entry.tenant,
        scopes: new Set(entry.scopes),
        issuedAt: entry.createdAt ? Math.floor(Date.parse(entry.createdAt) / 1000) : 0,
        kind: 'api-key',
      },
    };
  }
}
