// The client's expected SHA-256, from `Content-Digest: sha-256=:<base64>:`
// (RFC 9530) or `x-amz-checksum-sha256: <base64>` (what S3 clients send).

import { SluiceError } from '../errors.ts';

export function expectedSha256(headers: Record<string, string | string[] | undefined>): Buffer | undefined {
  const found: Buffer[] = [];
  const cd = headerValue(headers['content-digest']);
  if (cd !== undefined) {
    // A dictionary of algorithm=:bytes:; only sha-256 is acted on, others ignored.
    const m = /(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):/i.exec(cd);
    if (m) found.push(decode(m[1]!));
    // A sha-256 member in any other shape is malformed, not absent: never skip a digest the client asked for.
    else if (!/=\s*:/.test(cd) || /(?:^|,)\s*sha-256\s*=/i.test(cd)) throw new SluiceError('INVALID_DIGEST');
  }
  const amz = headerValue(headers['x-amz-checksum-sha256']);
  if (amz !== undefined) found.push(decode(amz.trim()));
  if (found.length === 2 && !found[0]!.equals(found[1]!)) {
    throw new SluiceError('INVALID_DIGEST', { message: 'Content-Digest and x-amz-checksum-sha256 disagree' });
  }
  return found[0];
}

/** A sha256 given as 64 hex characters or as base64 (multipart `sha256` fields accept both). */
export function parseSha256(value: string): Buffer {
  const v = value.trim();
  if (/^[0-9a-f]{64}$/i.test(v)) return Buffer.from(v, 'hex');
  return decode(v);
}

function decode(b64: string): Buffer {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new SluiceError('INVALID_DIGEST', { message: 'A sha-256 digest must be 32 bytes, base64-encoded' });
  }
  return buf;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

export function reprDigest(sha256Hex: string): string {
  return `sha-256=:${Buffer.from(sha256Hex, 'hex').toString('base64')}:`;
}
