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
import { TenantQuota, withTenantQuota } from '../src/core/tenant-quota.ts';
import { conditionalWrites, type ConditionalWrites, type ListOptions, type Storage } from '../src/storage/storage.ts';
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

    test('bytes stored around sluice count once an admin reconciles (one recount)', async () => {
      await srv.storage.put(`${srv.config.keyPrefix}/acme/outside/original`, (async function* () {
        yield Buffer.alloc(20 * 1024);
      })(), { contentType: 'application/octet-stream' });
      const reconcile = (headers: Record<string, string>) =>
        call(`${srv.url}/v1/admin/quota/reconcile`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ tenant: 'acme' }) });
      assert.equal((await reconcile(bearer(await hsToken({ tenant: 'acme', scopes: ['files:read', 'files:write'] })))).status, 403);
      const r = await reconcile(bearer(await hsToken({ tenant: 'acme', scopes: ['admin'] })));
      assert.equal(r.status, 200, r.body.toString());
      const { usedBytes, quotaBytes } = r.json<{ usedBytes: number; quotaBytes: number }>();
      assert.equal(quotaBytes, QUOTA);
      assert.ok(usedBytes >= 50 * 1024 && usedBytes < QUOTA, `used ${usedBytes}`);
      assert.equal((await put(acme, text(20 * 1024))).status, 507);
    });
  });
}

// The usage record: quota checks after the cache expires read one
// small record instead of listing every object of the tenant; a listing happens
// only when the record is missing or on reconcile(). The old code listed the
// tenant on every check once `ttlMs` had passed (here 0: every check).
for (const backend of backends()) {
  describe(`tenant usage record (${backend})`, () => {
    let srv: TestServer;
    let lists = 0;
    let counting: Storage & ConditionalWrites;
    before(async () => {
      srv = await startServer({ backend, label: 'sec-quota-rec' });
      const raw = conditionalWrites(srv.storage);
      counting = new Proxy(raw, {
        get(target, prop) {
          if (prop === 'list') return (o: ListOptions) => (lists++, target.list(o));
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    });
    after(() => srv.close());

    const body = (n: number) => (async function* () {
      yield Buffer.alloc(n, 1);
    })();
    const record = async (tenant: string) => {
      const got = await srv.storage.get(`${srv.config.keyPrefix}/_system/usage/${tenant}.json`);
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      return (JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number }).bytes;
    };

    test('checks after cache expiry list nothing; commits and deletes move the record; reconcile recounts', async () => {
      const tenant = `rec${backend}`;
      const quota = new TenantQuota(counting, srv.config.keyPrefix, 1_000_000, 0);
      const store = withTenantQuota(counting, quota);
      const key = (n: number) => `${srv.config.keyPrefix}/${tenant}/f${n}/original`;
      lists = 0;
      for (let i = 0; i < 5; i++) await store.put(key(i), body(1000), { contentType: 'application/octet-stream' });
      for (let i = 0; i < 20; i++) assert.equal(await quota.remaining(tenant), 1_000_000 - 5000);
      assert.equal(lists, 1, 'one recount, for the missing record; the old code listed on each of the 25 checks');
      assert.equal(await record(tenant), 5000);

      await store.delete(key(0));
      await store.delete(key(0)); // gone already: nothing subtracted twice
      assert.equal(await record(tenant), 4000);

      // Written around the wrapper: not seen until a reconcile, which lists once.
      await srv.storage.put(key(9), body(500), { contentType: 'application/octet-stream' });
      assert.equal(await quota.used(tenant), 4000);
      assert.equal(await quota.reconcile(tenant), 4500);
      assert.equal(lists, 2);
      assert.equal(await record(tenant), 4500);
      assert.equal(await quota.remaining(tenant), 1_000_000 - 4500);
    });

    test('two instances on one storage keep one exact record (compare-and-swap, retried on conflict)', async () => {
      const tenant = `cas${backend}`;
      const a = new TenantQuota(counting, srv.config.keyPrefix, 1_000_000, 0);
      const b = new TenantQuota(counting, srv.config.keyPrefix, 1_000_000, 0);
      const sa = withTenantQuota(counting, a);
      const sb = withTenantQuota(counting, b);
      assert.equal(await a.remaining(tenant), 1_000_000);
      const key = (n: number) => `${srv.config.keyPrefix}/${tenant}/f${n}/original`;
      await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? sa : sb).put(key(i), body(100 + i), { contentType: 'application/octet-stream' })));
      const total = Array.from({ length: 12 }, (_, i) => 100 + i).reduce((x, y) => x + y, 0);
      assert.equal(await record(tenant), total);
      assert.equal(await b.used(tenant), total);
      assert.equal(await a.used(tenant), total);
    });

    test('a quota still refuses a put past it, leaving the record unchanged', async () => {
      const tenant = `lim${backend}`;
      const quota = new TenantQuota(counting, srv.config.keyPrefix, 1500, 0);
      const store = withTenantQuota(counting, quota);
      await store.put(`${srv.config.keyPrefix}/${tenant}/a/original`, body(1000), { contentType: 'application/octet-stream' });
      await assert.rejects(store.put(`${srv.config.keyPrefix}/${tenant}/b/original`, body(1000), { contentType: 'application/octet-stream' }), { code: 'QUOTA_EXCEEDED' });
      assert.equal(await record(tenant), 1000);
    });
  });
}
