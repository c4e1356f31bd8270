// Raw tus 1.0 requests for protocol tests (undici over loopback), so every
// header on the wire is the test's own choice.

import { call, type Answer } from './http.ts';
import { leftovers, type TestServer } from './server.ts';

export const TUS = { 'tus-resumable': '1.0.0' };

export function tusMetadata(meta: Record<string, string>): string {
  return Object.entries(meta)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/** POST /v1/uploads; returns the answer and the absolute upload URL. */
export async function createUpload(
  base: string,
  length: number,
  meta: Record<string, string> = { filename: 'f.bin' },
  extra: Record<string, string> = {},
): Promise<{ res: Answer; url: string }> {
  const res = await call(`${base}/v1/uploads`, {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(length), 'upload-metadata': tusMetadata(meta), ...extra },
  });
  const location = String(res.headers.location ?? '');
  return { res, url: location ? new URL(location, base).toString() : '' };
}

export function patch(url: string, offset: number, body: Buffer, extra: Record<string, string> = {}): Promise<Answer> {
  return call(url, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream', ...extra },
    body,
  });
}

export async function head(url: string): Promise<Answer> {
  return call(url, { method: 'HEAD', headers: TUS });
}

export async function offsetOf(url: string): Promise<number> {
  const res = await head(url);
  if (res.status !== 200) throw new Error(`HEAD ${url}: ${res.status}`);
  return Number(res.headers['upload-offset']);
}

/**
 * leftovers() once the S3 bucket locks have been given back: an instance keeps
 * an idle lock for about a second for the upload's next request (s3-locker.ts).
 */
export async function settledLeftovers(srv: TestServer): Promise<{ keys: string[]; pending: number }> {
  let left = await leftovers(srv);
  // Waited for, however long a loaded machine takes; the deadline only turns a lock never given back into a failure below.
  const giveUp = performance.now() + 60_000;
  while (left.keys.some((k) => k.includes('/_system/tus/locks/')) && performance.now() < giveUp) {
    await new Promise((r) => setTimeout(r, 50));
    left = await leftovers(srv);
  }
  return left;
}
