// Several files in one multipart request commit together or not at all.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { call, elf, jpeg, multipartBody, pngOfSize, sha256, type UploadedFile } from './helpers/http.ts';

for (const backend of backends()) {
  describe(`multi-file requests on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'all-or-nothing' });
    });
    after(() => srv.close());

    it('commits every file of a good request, in order', async () => {
      const a = await pngOfSize(6 * 1024 * 1024);
      const b = await jpeg();
      const form = multipartBody([
        { name: 'note', data: 'a plain field' },
        { name: 'a', filename: 'a.png', contentType: 'image/png', data: a },
        { name: 'b', filename: 'b.jpg', contentType: 'image/jpeg', data: b },
        { name: 'c', filename: 'c.csv', contentType: 'text/csv', data: 'x,y\n1,2\n' },
      ]);
      const res = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(res.status, 201, res.body.toString());
      const files = res.json<{ files: UploadedFile[] }>().files;
      assert.deepEqual(files.map((f) => [f.name, f.type.mime]), [['a.png', 'image/png'], ['b.jpg', 'image/jpeg'], ['c.csv', 'text/csv']]);
      assert.equal(files[0]!.sha256, sha256(a));
      const list = (await call(`${srv.url}/v1/files`)).json<{ files: UploadedFile[] }>();
      assert.deepEqual(new Set(list.files.map((f) => f.id)), new Set(files.map((f) => f.id)));
      for (const f of files) assert.equal((await call(`${srv.url}/v1/files/${f.id}`, { method: 'DELETE' })).status, 204);
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('when a later file fails, the earlier ones are removed and one error is returned', async () => {
      const form = multipartBody([
        { name: 'a', filename: 'a.png', contentType: 'image/png', data: await pngOfSize(6 * 1024 * 1024) },
        { name: 'b', filename: 'b.jpg', contentType: 'image/jpeg', data: await jpeg() },
        { name: 'c', filename: 'innocent.jpg', contentType: 'image/jpeg', data: elf() },
      ]);
      const res = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(res.status, 415);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'TYPE_NOT_ALLOWED');
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
      assert.deepEqual((await call(`${srv.url}/v1/files`)).json(), { files: [] });
    });

    it('a request with no file part is NO_FILE', async () => {
      const form = multipartBody([{ name: 'only', data: 'a field' }]);
      const res = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(res.status, 400);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'NO_FILE');
    });
  });
}
