// Revocation: POST /v1/admin/revoke stores a not-before time in the storage
// backend. Two instances share one backend: a token issued before the bump is
// refused at once on the instance that took it and within the cache TTL on
// the other; tokens issued after it, and other subjects, still work.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { apiKey, bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const TTL_MS = 600;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of backends()) {
  describe(`revocation across instances (${backend})`, () => {
    let a: TestServer;
    let b: TestServer;
    const ci = apiKey('ci', 'acme', ['files:read']);
    before(async () => {
      const env = hsEnv({ SLUICE_AUTH_REVOCATION_CACHE_MS: String(TTL_MS), SLUICE_AUTH_API_KEYS: JSON.stringify([ci.entry]) });
      a = await startServer({ backend, env, label: 'sec-revoke' });
      const shared: Record<string, string> = a.config.storage.kind === 's3' ? { SLUICE_S3_BUCKET: a.config.storage.s3.bucket } : { SLUICE_DATA_DIR: a.config.storage.dataDir };
      b = await startServer({ backend, env: { ...env, ...shared }, label: 'sec-revoke-b' });
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    const status = async (srv: TestServer, headers: Record<string, string>) => (await call(`${srv.url}/v1/files`, { headers })).status;
    const revoke = (srv: TestServer, headers: Record<string, string>, body: unknown) =>
      call(`${srv.url}/v1/admin/revoke`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    test('a subject revoked on one instance is refused on every instance within the TTL', async () => {
      const admin = bearer(await hsToken({ sub: 'ops', tenant: 'acme' }));
      const leaked = bearer(await hsToken({ sub: 'mallory', tenant: 'acme' }));
      const bystander = bearer(await hsToken({ sub: 'alice', tenant: 'acme' }));
      assert.equal(await status(a, leaked), 200);
      assert.equal(await status(b, leaked), 200); // b now caches "not revoked"

      const r = await revoke(a, admin, { subject: 'mallory' });
      assert.equal(r.status, 200, r.body.toString());
      const rev = r.json<{ revocations: { kind: string; value: string; notBefore: string }[] }>().revocations;
      assert.deepEqual(rev.map((x) => [x.kind, x.value]), [['subject', 'mallory']]);

      const refused = await call(`${a.url}/v1/files`, { headers: leaked });
      assert.equal(refused.status, 401);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'TOKEN_REVOKED');
      await sleep(TTL_MS + 100);
      assert.equal(await status(b, leaked), 401);
      assert.equal(await status(b, bystander), 200);

      // A token issued after the not-before time works again.
      await sleep(Math.max(0, Date.parse(rev[0]!.notBefore) - Date.now()) + 50);
      assert.equal(await status(b, bearer(await hsToken({ sub: 'mallory', tenant: 'acme' }))), 200);
    });

    test('revoking a tenant refuses all its tokens and API keys created before, not other tenants', async () => {
      const admin = bearer(await hsToken({ sub: 'ops', tenant: 'ops' }));
      const acmeUser = bearer(await hsToken({ sub: 'carol', tenant: 'acme' }));
      const other = bearer(await hsToken({ sub: 'dave', tenant: 'beta' }));
      assert.equal(await status(b, { 'x-api-key': ci.key }), 200);
      assert.equal((await revoke(b, admin, { tenant: 'acme' })).status, 200);
      await sleep(TTL_MS + 100);
      for (const srv of [a, b]) {
        assert.equal(await status(srv, acmeUser), 401);
        assert.equal(await status(srv, { 'x-api-key': ci.key }), 401);
        assert.equal(await status(srv, other), 200);
      }
    });

    test('the record lives under _system in the backend; bad requests are 400; admin scope is required', async () => {
      const keys = (await a.storage.list({ prefix: `${a.config.keyPrefix}/_system/revocations/` })).objects.map((o) => o.key);
      assert.ok(keys.some((k) => k.includes('/subjects/')) && keys.some((k) => k.endsWith('/tenants/acme.json')), keys.join());
      const admin = bearer(await hsToken({ sub: 'ops', tenant: 'ops' }));
      for (const body of [{}, { tenant: '../x' }, { subject: '' }, { other: 1 }]) assert.equal((await revoke(a, admin, body)).status, 400, JSON.stringify(body));
      const notAdmin = bearer(await hsToken({ sub: 'x', tenant: 'ops', scopes: ['files:read', 'files:write', 'files:delete'] }));
      assert.equal((await revoke(a, notAdmin, { subject: 'x' })).status, 403);
    });
  });
}
