// Downloads: Range → 206/416, ETag → 304, If-Range, HEAD, safe Content-Disposition.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256, type UploadedFile } from './helpers/http.ts';

for (const backend of backends()) {
  describe(`downloads on ${backend}`, () => {
    let srv: TestServer;
    let data: Buffer;
    let file: UploadedFile;
    let url: string;
    before(async () => {
      srv = await startServer({ backend, label: 'download' });
      data = await pngOfSize(100_000);
      const name = encodeURIComponent('résumé "final"\u202e.png');
      const r = await call(`${srv.url}/v1/files/${name}`, { method: 'PUT', body: data });
      file = r.json<{ files: UploadedFile[] }>().files[0]!;
      url = `${srv.url}/v1/files/${file.id}/content`;
    });
    after(() => srv.close());

    it('GET sends the bytes with type, length, strong ETag and Repr-Digest', async () => {
      const r = await call(url);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'image/png');
      assert.equal(r.headers['content-length'], String(data.length));
      assert.equal(r.headers.etag, `"${sha256(data)}"`);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.deepEqual(r.body, data);
    });

    it('Content-Disposition carries a safe name: no quotes broken, no bidi override', async () => {
      const cd = String((await call(url, { method: 'HEAD' })).headers['content-disposition']);
      assert.match(cd, /^inline; filename="/);
      assert.ok(!cd.includes('\u202e'));
      assert.match(cd, /filename\*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22\.png/);
      const dl = String((await call(`${url}?download=1`, { method: 'HEAD' })).headers['content-disposition']);
      assert.match(dl, /^attachment;/);
    });

    it('HEAD sends headers and no body', async () => {
      const r = await call(url, { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(data.length));
      assert.equal(r.body.length, 0);
    });

    it('Range forms: closed, open-ended, suffix; past-the-end is 416 with Content-Range', async () => {
      const closed = await call(url, { headers: { range: 'bytes=10-19' } });
      assert.equal(closed.status, 206);
      assert.equal(closed.headers['content-range'], `bytes 10-19/${data.length}`);
      assert.deepEqual(closed.body, data.subarray(10, 20));
      const open = await call(url, { headers: { range: 'bytes=99990-' } });
      assert.deepEqual(open.body, data.subarray(99990));
      const suffix = await call(url, { headers: { range: 'bytes=-5' } });
      assert.deepEqual(suffix.body, data.subarray(data.length - 5));
      const clipped = await call(url, { headers: { range: 'bytes=99999-200000' } });
      assert.equal(clipped.status, 206);
      assert.equal(clipped.body.length, 1);
      const beyond = await call(url, { headers: { range: `bytes=${data.length}-` } });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers['content-range'], `bytes */${data.length}`);
      assert.equal(beyond.json<{ error: { code: string } }>().error.code, 'RANGE_NOT_SATISFIABLE');
      const junk = await call(url, { headers: { range: 'bytes=5-1' } });
      assert.equal(junk.status, 200, 'an invalid range is ignored');
      const multi = await call(url, { headers: { range: 'bytes=0-1,5-6' } });
      assert.equal(multi.status, 200, 'multiple ranges get the whole representation');
    });

    it('If-None-Match with the ETag is 304; If-Range with a stale ETag sends everything', async () => {
      const etag = `"${sha256(data)}"`;
      const nm = await call(url, { headers: { 'if-none-match': etag } });
      assert.equal(nm.status, 304);
      assert.equal(nm.body.length, 0);
      assert.equal((await call(url, { headers: { 'if-none-match': `W/${etag}, "other"` } })).status, 304);
      assert.equal((await call(url, { headers: { 'if-none-match': '"other"' } })).status, 200);
      const fresh = await call(url, { headers: { range: 'bytes=0-9', 'if-range': etag } });
      assert.equal(fresh.status, 206);
      const stale = await call(url, { headers: { range: 'bytes=0-9', 'if-range': '"stale"' } });
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, data.length);
    });

    it('unknown, malformed and deleted ids are 404 FILE_NOT_FOUND', async () => {
      for (const id of ['01a212cf-59ae-7003-b8f9-d54c2b184cd3', 'not-an-id', '..%2F..%2Fetc']) {
        const r = await call(`${srv.url}/v1/files/${id}/content`);
        assert.equal(r.status, 404, id);
        assert.equal(r.json<{ error: { code: string } }>().error.code, 'FILE_NOT_FOUND');
      }
    });
  });
}
