// Scopes and tenants, on every backend: a missing scope is 403; another
// tenant's files cannot be listed, read, linked or deleted, and every attempt
// answers exactly as for a file that does not exist (404 FILE_NOT_FOUND).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

for (const backend of backends()) {
  describe(`tenant isolation (${backend})`, () => {
    let srv: TestServer;
    let acme: Record<string, string>;
    let beta: Record<string, string>;
    let acmeFile: string;
    before(async () => {
      srv = await startServer({ backend, env: hsEnv(), label: 'sec-tenants' });
      acme = bearer(await hsToken({ tenant: 'acme', sub: 'alice' }));
      beta = bearer(await hsToken({ tenant: 'beta', sub: 'bob' }));
      const up = await call(`${srv.url}/v1/files/secret.txt`, { method: 'PUT', headers: { ...acme, 'content-type': 'text/plain' }, body: 'acme only' });
      assert.equal(up.status, 201, up.body.toString());
      acmeFile = up.json<{ files: { id: string }[] }>().files[0]!.id;
    });
    after(() => srv.close());

    test('files are stored under the owning tenant', async () => {
      const keys = (await srv.storage.list({ prefix: `${srv.config.keyPrefix}/acme/${acmeFile}/` })).objects.map((o) => o.key);
      assert.ok(keys.length >= 2, keys.join());
      assert.equal((await srv.storage.list({ prefix: `${srv.config.keyPrefix}/beta/` })).objects.length, 0);
    });

    test('another tenant gets 404 for read, content, HEAD, links and delete; the file survives', async () => {
      const nonexistent = '01937f6e-7d8a-7c3b-9a6e-5d4c3b2a1f0e';
      for (const [method, path] of [
        ['GET', `/v1/files/${acmeFile}`],
        ['GET', `/v1/files/${acmeFile}/content`],
        ['HEAD', `/v1/files/${acmeFile}/content`],
        ['POST', `/v1/files/${acmeFile}/links`],
        ['DELETE', `/v1/files/${acmeFile}`],
      ] as const) {
        const other = await call(`${srv.url}${path}`, { method, headers: beta });
        const missing = await call(`${srv.url}${path.replace(acmeFile, nonexistent)}`, { method, headers: beta });
        assert.equal(other.status, 404, `${method} ${path}: ${other.body.toString()}`);
        assert.equal(other.status, missing.status);
        if (method !== 'HEAD') assert.equal(other.json<{ error: { code: string } }>().error.code, 'FILE_NOT_FOUND');
      }
      const own = await call(`${srv.url}/v1/files/${acmeFile}/content`, { headers: acme });
      assert.equal(own.status, 200);
      assert.equal(own.body.toString(), 'acme only');
    });

    test("listing shows only the caller's files", async () => {
      const b = await call(`${srv.url}/v1/files`, { headers: beta });
      assert.deepEqual(b.json<{ files: unknown[] }>().files, []);
      const a = await call(`${srv.url}/v1/files`, { headers: acme });
      assert.deepEqual(a.json<{ files: { id: string }[] }>().files.map((f) => f.id), [acmeFile]);
    });

    test('a missing scope is 403 INSUFFICIENT_SCOPE naming the scope', async () => {
      const readOnly = bearer(await hsToken({ tenant: 'acme', scopes: ['files:read'] }));
      const cases = [
        ['PUT', '/v1/files/x.txt', 'files:write'],
        ['POST', '/v1/files', 'files:write'],
        ['DELETE', `/v1/files/${acmeFile}`, 'files:delete'],
        ['POST', '/v1/admin/revoke', 'admin'],
      ] as const;
      for (const [method, path, scope] of cases) {
        const r = await call(`${srv.url}${path}`, { method, headers: { ...readOnly, 'content-type': 'text/plain' }, body: 'x' });
        assert.equal(r.status, 403, `${method} ${path}`);
        const e = r.json<{ error: { code: string; details: { required: string } } }>().error;
        assert.equal(e.code, 'INSUFFICIENT_SCOPE');
        assert.equal(e.details.required, scope);
      }
      const none = bearer(await hsToken({ tenant: 'acme', scopes: [] }));
      assert.equal((await call(`${srv.url}/v1/files`, { headers: none })).status, 403);
      // Nothing was written by the refused uploads.
      const list = await call(`${srv.url}/v1/files`, { headers: acme });
      assert.equal(list.json<{ files: unknown[] }>().files.length, 1);
    });
  });
}
