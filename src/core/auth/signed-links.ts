// Signed download links: /v1/links/<tenant>/<id>?expires=<epoch s>&sig=<hmac>.
// The HMAC-SHA256 covers a version tag, the tenant, the file id and the
// expiry, so none of them can be changed; it is checked (in constant time)
// before anything else, so a bad link learns nothing about which files exist.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { SluiceError } from '../../errors.ts';
import { isFileId, isTenant } from '../keys.ts';

export interface LinkTarget {
  tenant: string;
  id: string;
  /** Expiry, seconds since the epoch. */
  expires: number;
}

function mac(secret: string, t: LinkTarget): Buffer {
  return createHmac('sha256', secret).update(`sluice-link/v1\n${t.tenant}\n${t.id}\n${t.expires}`).digest();
}

export function linkPath(secret: string, t: LinkTarget): string {
  const sig = mac(secret, t).toString('base64url');
  return `/v1/links/${t.tenant}/${t.id}?expires=${t.expires}&sig=${sig}`;
}

/** The target of a valid, unexpired link; LINK_INVALID or LINK_EXPIRED otherwise. */
export function verifyLink(
  secret: string,
  raw: { tenant: string; id: string; expires: string | undefined; sig: string | undefined },
  nowMs: number = Date.now(),
): LinkTarget {
  const { tenant, id, expires, sig } = raw;
  if (!isTenant(tenant) || !isFileId(id) || expires === undefined || !/^\d{1,12}$/.test(expires) || sig === undefined || !/^[A-Za-z0-9_-]{43}$/.test(sig)) {
    throw new SluiceError('LINK_INVALID');
  }
  const target = { tenant, id, expires: Number(expires) };
  if (!timingSafeEqual(mac(secret, target), Buffer.from(sig, 'base64url'))) throw new SluiceError('LINK_INVALID');
  if (target.expires * 1000 <= nowMs) throw new SluiceError('LINK_EXPIRED');
  return target;
}
