// A sluice server with the S3 endpoint on, and AWS SDK clients pointed at it.

import { createHash, createHmac } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';
import { generateS3AccessKey, type S3AccessKeyEntry } from '../../src/core/auth/s3-access-keys.ts';
import type { Scope } from '../../src/core/auth/scopes.ts';

export const S3API_SECRET = 'test-s3api-server-secret-0123456789abcdef';

export interface IssuedKey {
  accessKeyId: string;
  secretAccessKey: string;
  entry: S3AccessKeyEntry;
}

export function issueKey(tenant: string, scopes: Scope[] = ['files:read', 'files:write', 'files:delete']): IssuedKey {
  return generateS3AccessKey(S3API_SECRET, { tenant, scopes });
}

export function s3ApiEnv(keys: IssuedKey[]): Record<string, string> {
  return { SLUICE_S3API_ACCESS_KEYS: JSON.stringify(keys.map((k) => k.entry)), SLUICE_S3API_SECRET: S3API_SECRET };
}

export function sluiceS3Client(url: string, key: Pick<IssuedKey, 'accessKeyId' | 'secretAccessKey'>): S3Client {
  return new S3Client({
    endpoint: `${url}/s3`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
}

/** node:crypto's SHA-256 and HMAC in the shape the SDK's signer takes. */
export class Sha256 implements Checksum {
  #h;
  constructor(key?: SourceData) {
    this.#h = key === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(key as Uint8Array));
  }
  update(d: Uint8Array) {
    this.#h.update(d);
  }
  digest() {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset() {}
}

/** A presigned GET URL made by the AWS SDK's own signer, as @aws-sdk/s3-request-presigner makes it. */
export async function presignedUrl(base: string, key: Pick<IssuedKey, 'accessKeyId' | 'secretAccessKey'>, path: string, opts: { expiresIn: number; signingDate?: Date }): Promise<string> {
  const url = new URL(base);
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: key, sha256: Sha256, uriEscapePath: false });
  const req = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path, query: {}, headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    { expiresIn: opts.expiresIn, ...(opts.signingDate ? { signingDate: opts.signingDate } : {}) },
  );
  const qs = Object.entries(req.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
  return `${base}${path}?${qs}`;
}
