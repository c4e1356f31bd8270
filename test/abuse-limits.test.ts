// Abuse limits: per-IP and per-subject rate limits answer 429 RATE_LIMITED
// with Retry-After; a tenant past its concurrent-upload cap gets 429
// TOO_MANY_UPLOADS while other tenants upload freely, and the slot comes back
// when an upload ends.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { issueKey, s3ApiEnv, sluiceS3Client } from './helpers/s3api.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

describe('rate limits', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: hsEnv({ SLUICE_RATE_LIMIT_PER_IP: '12', SLUICE_RATE_LIMIT_PER_SUBJECT: '4', SLUICE_RATE_LIMIT_WINDOW_MS: '60000' }) });
  });
  after(() => srv.close());

  test('per subject: the fifth request of a token in the window is 429 with Retry-After; another subject is unaffected', async () => {
    const a = bearer(await hsToken({ sub: 'a' }));
    const b = bearer(await hsToken({ sub: 'b' }));
    for (let i = 0; i < 4; i++) assert.equal((await call(`${srv.url}/v1/files`, { headers: a })).status, 200);
    const r = await call(`${srv.url}/v1/files`, { headers: a });
    assert.equal(r.status, 429);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
    assert.ok(Number(r.headers['retry-after']) >= 1 && Number(r.headers['retry-after']) <= 60, String(r.headers['retry-after']));
    assert.equal((await call(`${srv.url}/v1/files`, { headers: b })).status, 200);
  });

  test('per IP: unauthenticated floods are limited too; /health never is', async () => {
    let limited: number | undefined;
    for (let i = 0; i < 20 && limited === undefined; i++) {
      const r = await call(`${srv.url}/v1/files`, { headers: { authorization: 'Bearer junk' } });
      if (r.status === 429) limited = i;
      else assert.equal(r.status, 401);
    }
    assert.ok(limited !== undefined, 'never limited');
    assert.equal((await call(`${srv.url}/health`)).status, 200);
  });
});

describe('concurrent uploads per tenant', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: hsEnv({ SLUICE_TENANT_MAX_CONCURRENT_UPLOADS: '2', SLUICE_RATE_LIMIT_PER_IP: '0', SLUICE_RATE_LIMIT_PER_SUBJECT: '0' }) });
  });
  after(() => srv.close());

  /** An upload whose body is held open until `finish` is called. */
  function heldUpload(headers: Record<string, string>) {
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    async function* body() {
      yield Buffer.from('hello ');
      await held;
      yield Buffer.from('world');
    }
    const res = request(`${srv.url}/v1/files/held.txt`, { method: 'PUT', headers: { ...headers, 'content-type': 'text/plain' }, body: Readable.from(body()) });
    return { finish, res };
  }

  test('the third concurrent upload of a tenant is 429 TOO_MANY_UPLOADS; other tenants and later uploads pass', async () => {
    const acme = bearer(await hsToken({ tenant: 'acme' }));
    const beta = bearer(await hsToken({ tenant: 'beta' }));
    const u1 = heldUpload(acme);
    const u2 = heldUpload(acme);
    // Both hold their tenant slot once they reserve buffer budget (the slot is taken first, in onRequest).
    await until(() => srv.deps.budget.used >= 2 * srv.storage.bufferedBytesPerPut, 'both held uploads to be admitted');
    const third = await call(`${srv.url}/v1/files/x.txt`, { method: 'PUT', headers: { ...acme, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(third.status, 429);
    assert.equal(third.json<{ error: { code: string } }>().error.code, 'TOO_MANY_UPLOADS');
    assert.ok(third.headers['retry-after']);
    const other = await call(`${srv.url}/v1/files/x.txt`, { method: 'PUT', headers: { ...beta, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(other.status, 201);
    u1.finish();
    u2.finish();
    for (const u of [u1, u2]) {
      const r = await u.res;
      assert.equal(r.statusCode, 201);
      await r.body.dump();
    }
    const later = await call(`${srv.url}/v1/files/x.txt`, { method: 'PUT', headers: { ...acme, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(later.status, 201);
  });
});

describe('rate limits on the S3 endpoint', () => {
  const acme = issueKey('acme');
  const other = issueKey('acme');
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: { ...s3ApiEnv([acme, other]), SLUICE_RATE_LIMIT_PER_IP: '12', SLUICE_RATE_LIMIT_PER_SUBJECT: '4', SLUICE_RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  after(() => srv.close());

  test('per access key: the fifth request in the window is SlowDown with Retry-After; another key is unaffected', async () => {
    const s3 = sluiceS3Client(srv.url, acme);
    const s3b = sluiceS3Client(srv.url, other);
    try {
      for (let i = 0; i < 4; i++) await s3.send(new ListObjectsV2Command({ Bucket: 'acme' }));
      const err = await s3.send(new ListObjectsV2Command({ Bucket: 'acme' })).then(
        () => undefined,
        (e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } },
      );
      assert.equal(err?.name, 'SlowDown');
      assert.equal(err.$metadata?.httpStatusCode, 503);
      assert.match(err.message, /RATE_LIMITED/);
      assert.ok(Number(err.$response?.headers?.['retry-after']) >= 1, 'Retry-After');
      await s3b.send(new ListObjectsV2Command({ Bucket: 'acme' }));
    } finally {
      s3.destroy();
      s3b.destroy();
    }
  });

  test('per IP, before any signature is checked: unsigned floods are limited too', async () => {
    let limited: number | undefined;
    for (let i = 0; i < 20 && limited === undefined; i++) {
      const r = await call(`${srv.url}/s3/acme/x.txt`);
      if (r.status === 503 && r.body.toString().includes('<Code>SlowDown</Code>')) limited = i;
      else assert.equal(r.status, 403, r.body.toString());
    }
    assert.ok(limited !== undefined, 'never limited');
  });
});
