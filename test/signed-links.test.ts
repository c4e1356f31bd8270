// Signed download links, on every backend: POST /v1/files/:id/links returns a
// URL that downloads without a token until it expires; any change to tenant,
// id, expiry or signature is 403 LINK_INVALID, before any file lookup.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call, jpeg, sha256 } from './helpers/http.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

for (const backend of backends()) {
  describe(`signed links (${backend})`, () => {
    let srv: TestServer;
    let auth: Record<string, string>;
    let id: string;
    let image: Buffer;
    before(async () => {
      srv = await startServer({ backend, env: hsEnv({ SLUICE_LINK_SECRET: 'link-secret-0123456789-0123456789-abcdef' }), label: 'sec-links' });
      auth = bearer(await hsToken({ tenant: 'acme', scopes: ['files:read', 'files:write'] }));
      image = await jpeg();
      const up = await call(`${srv.url}/v1/files/photo.jpg`, { method: 'PUT', headers: { ...auth, 'content-type': 'image/jpeg' }, body: image });
      id = up.json<{ files: { id: string }[] }>().files[0]!.id;
    });
    after(() => srv.close());

    /** `sentAt`/`answeredAt` bracket the server's clock reading: expiresAt is whole seconds from it. */
    const link = async (body?: unknown) => {
      const sentAt = Date.now();
      const r = await call(`${srv.url}/v1/files/${id}/links`, {
        method: 'POST',
        headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      assert.equal(r.status, 201, r.body.toString());
      return { ...r.json<{ url: string; expiresAt: string }>(), sentAt, answeredAt: Date.now() };
    };
    const assertExpiresIn = (l: { expiresAt: string; sentAt: number; answeredAt: number }, ttlS: number) => {
      const at = Date.parse(l.expiresAt);
      assert.ok(at >= Math.floor(l.sentAt / 1000) * 1000 + ttlS * 1000 && at <= l.answeredAt + ttlS * 1000, `${l.expiresAt} is not ${ttlS} s after the request`);
    };

    test('a link downloads the file without a token, with ranges and the file headers', async () => {
      const l = await link({ expiresIn: 60 });
      const { url } = l;
      assertExpiresIn(l, 60);
      const r = await call(url);
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), sha256(image));
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['referrer-policy'], 'no-referrer');
      const part = await call(url, { headers: { range: 'bytes=0-9' } });
      assert.equal(part.status, 206);
      assert.equal(part.body.length, 10);
    });

    test('a link without a body uses the default lifetime; longer than the maximum is refused', async () => {
      assertExpiresIn(await link(), srv.config.security.links.defaultTtlS);
      const r = await call(`${srv.url}/v1/files/${id}/links`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ expiresIn: srv.config.security.links.maxTtlS + 1 }),
      });
      assert.equal(r.status, 400);
    });

    test('an expired link is 403 LINK_EXPIRED', async () => {
      const { url, expiresAt } = await link({ expiresIn: 1 });
      await until(() => Date.now() > Date.parse(expiresAt), 'the link to expire');
      const r = await call(url);
      assert.equal(r.status, 403);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'LINK_EXPIRED');
    });

    test('altered links are 403 LINK_INVALID', async () => {
      const { url } = await link({ expiresIn: 60 });
      const u = new URL(url);
      const [, , , tenant, fileId] = u.pathname.split('/');
      const exp = u.searchParams.get('expires')!;
      const sig = u.searchParams.get('sig')!;
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      const variants = [
        `/v1/links/beta/${fileId}?expires=${exp}&sig=${sig}`,
        `/v1/links/${tenant}/01937f6e-7d8a-7c3b-9a6e-5d4c3b2a1f0e?expires=${exp}&sig=${sig}`,
        `/v1/links/${tenant}/${fileId}?expires=${Number(exp) + 3600}&sig=${sig}`,
        `/v1/links/${tenant}/${fileId}?expires=${exp}&sig=${flip(sig)}`,
        `/v1/links/${tenant}/${fileId}?expires=${exp}`,
        `/v1/links/${tenant}/${fileId}?expires=${exp}&sig=${sig}&sig=${sig}`,
        `/v1/links/..%2F${tenant}/${fileId}?expires=${exp}&sig=${sig}`,
      ];
      for (const v of variants) {
        const r = await call(`${srv.url}${v}`);
        assert.equal(r.status, 403, v);
        assert.equal(r.json<{ error: { code: string } }>().error.code, 'LINK_INVALID', v);
      }
    });

    test('a link to a deleted file is 404', async () => {
      const up = await call(`${srv.url}/v1/files/gone.jpg`, { method: 'PUT', headers: { ...auth, 'content-type': 'image/jpeg' }, body: image });
      const goneId = up.json<{ files: { id: string }[] }>().files[0]!.id;
      const r = await call(`${srv.url}/v1/files/${goneId}/links`, { method: 'POST', headers: auth });
      const { url } = r.json<{ url: string }>();
      const admin = bearer(await hsToken({ tenant: 'acme' }));
      assert.equal((await call(`${srv.url}/v1/files/${goneId}`, { method: 'DELETE', headers: admin })).status, 204);
      assert.equal((await call(url)).status, 404);
    });
  });
}
