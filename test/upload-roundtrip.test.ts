// Bytes in equal bytes out, through real HTTP, on both backends, at the sizes
// where part boundaries are easiest to get wrong.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, multipartBody, pngOfSize, sha256, type UploadedFile } from './helpers/http.ts';
import { listPendingMultipartUploads } from './helpers/s3.ts';

const PART = 5 * 1024 * 1024; // the test servers' part size (S3's minimum)

for (const backend of backends()) {
  describe(`round trip on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'roundtrip' });
    });
    after(() => srv.close());

    const sizes: Array<[string, number]> = [
      ['0 bytes', 0],
      ['1 byte', 1],
      ['partSize-1', PART - 1],
      ['partSize', PART],
      ['partSize+1', PART + 1],
      ['several parts', 3 * PART + 12345],
    ];
    for (const [label, size] of sizes) {
      it(`PUT then GET is byte-identical: ${label}`, async () => {
        const data = size < 100 ? Buffer.alloc(size, 'a') : await pngOfSize(size);
        const put = await call(`${srv.url}/v1/files/${encodeURIComponent(`f ${label}.bin`)}`, { method: 'PUT', body: data });
        assert.equal(put.status, 201, put.body.toString());
        const [file] = put.json<{ files: UploadedFile[] }>().files;
        assert.ok(file);
        assert.equal(file.size, size);
        assert.equal(file.sha256, sha256(data));
        assert.equal(file.type.mime, size < 100 ? 'text/plain' : 'image/png');
        const got = await call(`${srv.url}/v1/files/${file.id}/content`);
        assert.equal(got.status, 200);
        assert.equal(got.body.length, size);
        assert.equal(sha256(got.body), sha256(data));
        assert.equal(got.headers['repr-digest'], `sha-256=:${Buffer.from(sha256(data), 'hex').toString('base64')}:`);
      });
    }

    it('multipart upload of a multi-part file is byte-identical, manifest readable', async () => {
      const data = await pngOfSize(2 * PART + 77);
      const form = multipartBody([{ name: 'file', filename: 'big.png', contentType: 'image/png', data }]);
      const res = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(res.status, 201, res.body.toString());
      const [file] = res.json<{ files: UploadedFile[] }>().files;
      assert.ok(file);
      assert.equal(file.sha256, sha256(data));
      const manifest = (await call(`${srv.url}/v1/files/${file.id}`)).json<{ version: number; sha256: string; original: { key: string } }>();
      assert.equal(manifest.version, 1);
      assert.equal(manifest.sha256, sha256(data));
      assert.match(manifest.original.key, new RegExp(`/${file.id}/original$`));
      const got = await call(`${srv.url}/v1/files/${file.id}/content`);
      assert.equal(sha256(got.body), sha256(data));
      if (srv.s3 && srv.bucket) assert.deepEqual(await listPendingMultipartUploads(srv.s3, srv.bucket), []);
    });
  });
}
