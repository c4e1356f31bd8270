// A client's expected digest is checked before commit; a mismatch stores nothing.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it, before, after } from 'node:test';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { call, multipartBody, pngOfSize, sha256 } from './helpers/http.ts';

const b64 = (b: Buffer) => createHash('sha256').update(b).digest('base64');
const code = (r: { json: () => unknown }) => (r.json() as { error: { code: string } }).error.code;

for (const backend of backends()) {
  describe(`client checksums on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'checksum' });
    });
    after(() => srv.close());

    it('Content-Digest that matches is accepted', async () => {
      const data = await pngOfSize(6 * 1024 * 1024);
      const r = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: data, headers: { 'content-digest': `sha-256=:${b64(data)}:` } });
      assert.equal(r.status, 201);
      const id = r.json<{ files: Array<{ id: string }> }>().files[0]!.id;
      await call(`${srv.url}/v1/files/${id}`, { method: 'DELETE' });
    });

    it('a mismatching Content-Digest on a multi-part upload is 422 and leaves no object or pending upload', async () => {
      const data = await pngOfSize(11 * 1024 * 1024);
      const wrong = b64(Buffer.from('something else'));
      const r = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: data, headers: { 'content-digest': `sha-256=:${wrong}:` } });
      assert.equal(r.status, 422);
      assert.equal(code(r), 'CHECKSUM_MISMATCH');
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('x-amz-checksum-sha256 is honoured the same way', async () => {
      const data = await pngOfSize(1000);
      const bad = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: data, headers: { 'x-amz-checksum-sha256': b64(Buffer.from('x')) } });
      assert.equal(bad.status, 422);
      const good = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: data, headers: { 'x-amz-checksum-sha256': b64(data) } });
      assert.equal(good.status, 201);
      await call(`${srv.url}/v1/files/${good.json<{ files: Array<{ id: string }> }>().files[0]!.id}`, { method: 'DELETE' });
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('a multipart sha256 field (hex) applies to the file that follows', async () => {
      const data = await pngOfSize(2000);
      const ok = multipartBody([{ name: 'sha256', data: sha256(data) }, { name: 'f', filename: 'a.png', data }]);
      const r1 = await call(`${srv.url}/v1/files`, { method: 'POST', body: ok.body, headers: { 'content-type': ok.contentType } });
      assert.equal(r1.status, 201);
      await call(`${srv.url}/v1/files/${r1.json<{ files: Array<{ id: string }> }>().files[0]!.id}`, { method: 'DELETE' });
      const bad = multipartBody([{ name: 'f.sha256', data: sha256(Buffer.from('nope')) }, { name: 'f', filename: 'a.png', data }]);
      const r2 = await call(`${srv.url}/v1/files`, { method: 'POST', body: bad.body, headers: { 'content-type': bad.contentType } });
      assert.equal(r2.status, 422);
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('a malformed digest header is INVALID_DIGEST (400)', async () => {
      for (const h of [{ 'content-digest': 'sha-256=:tooshort:' }, { 'x-amz-checksum-sha256': '!!' }, { 'content-digest': 'garbage' }] as Array<Record<string, string>>) {
        const r = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: await pngOfSize(500), headers: h });
        assert.equal(r.status, 400, JSON.stringify(h));
        assert.equal(code(r), 'INVALID_DIGEST');
      }
    });
  });
}
