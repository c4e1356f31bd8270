// The optional per-tenant storage quota, on every backend: a declared size
// over what is left is refused before the body is read; a body without a
// length is cut off when it passes the quota, leaving nothing behind; other
// tenants are unaffected, and deleting files frees the space.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';

const QUOTA = 64 * 1024;

for (const backend of backends()) {
  describe(`tenant quota (${backend})`, () => {
    let srv: TestServer;
    let acme: Record<string, string>;
    let beta: Record<string, string>;
    before(async () => {
      srv = await startServer({ backend, env: hsEnv({ SLUICE_TENANT_QUOTA_BYTES: String(QUOTA) }), label: 'sec-quota' });
      acme = bearer(await hsToken({ tenant: 'acme' }));
      beta = bearer(await hsToken({ tenant: 'beta' }));
    });
    after(() => srv.close());

    const put = (headers: Record<string, string>, body: Buffer | Readable) =>
      call(`${srv.url}/v1/files/data.txt`, { method: 'PUT', headers: { ...headers, 'content-type': 'text/plain' }, body: body as Buffer });
    // Text with a fixed start: random base64 can begin with magic bytes ("MZ" is a DOS executable) and be refused.
    const text = (n: number) => Buffer.from(`text\n${randomBytes(n).toString('base64')}`.slice(0, n));
    const code = (r: { json<T>(): T }) => r.json<{ error: { code: string } }>().error.code;

    test('within the quota uploads pass; a Content-Length past what is left is 507 before the body is read', async () => {
      const first = await put(acme, text(40 * 1024));
      assert.equal(first.status, 201, first.body.toString());
      const over = await put(acme, text(30 * 1024));
      assert.equal(over.status, 507);
      assert.equal(code(over), 'QUOTA_EXCEEDED');
    });

    test('a chunked body is cut off when it passes the quota, leaving no object or pending upload', async () => {
      const before = await leftovers(srv);
      async function* chunks() {
        for (let i = 0; i < 8; i++) yield text(8 * 1024);
      }
      const r = await call(`${srv.url}/v1/files/stream.txt`, { method: 'PUT', headers: { ...acme, 'content-type': 'text/plain' }, body: chunks() });
      assert.equal(r.status, 507);
      assert.equal(code(r), 'QUOTA_EXCEEDED');
      const after = await leftovers(srv);
      assert.deepEqual(after.keys, before.keys);
      assert.equal(after.pending, 0);
    });

    test('another tenant has its own quota; deleting files frees space', async () => {
      assert.equal((await put(beta, text(40 * 1024))).status, 201);
      const list = await call(`${srv.url}/v1/files`, { headers: acme });
      for (const f of list.json<{ files: { id: string }[] }>().files) {
        assert.equal((await call(`${srv.url}/v1/files/${f.id}`, { method: 'DELETE', headers: acme })).status, 204);
      }
      assert.equal((await put(acme, text(30 * 1024))).status, 201);
    });
  });
}
