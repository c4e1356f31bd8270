// The tus 1.0 protocol over real loopback HTTP: discovery, creation,
// creation-with-upload, offsets, limits, checksum, termination, expiration.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { TUS, createUpload, head, offsetOf, patch, tusMetadata, settledLeftovers } from './helpers/tus.ts';
import { until } from './helpers/wait.ts';

const MiB = 1024 * 1024;

for (const backend of backends()) {
  describe(`tus protocol on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-protocol', env: { SLUICE_MAX_FILE_BYTES: String(64 * MiB) } });
    });
    after(() => srv.close());

    it('OPTIONS advertises version, extensions, max size and checksum algorithms', async () => {
      const res = await call(`${srv.url}/v1/uploads`, { method: 'OPTIONS' });
      assert.equal(res.status, 204);
      assert.equal(res.headers['tus-version'], '1.0.0');
      const ext = String(res.headers['tus-extension']).split(',');
      for (const e of ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum']) assert.ok(ext.includes(e), e);
      assert.equal(res.headers['tus-max-size'], String(64 * MiB));
      assert.match(String(res.headers['tus-checksum-algorithm']), /sha1/);
    });

    it('creation answers 201 with a Location under /v1/uploads and Upload-Expires; HEAD reports offset 0', async () => {
      const { res, url } = await createUpload(srv.url, 1000);
      assert.equal(res.status, 201);
      assert.match(String(res.headers.location), /^\/v1\/uploads\/[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(String(res.headers['upload-expires']))));
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '0');
      assert.equal(h.headers['upload-length'], '1000');
      assert.equal(h.headers['tus-resumable'], '1.0.0');
    });

    it('a request without Tus-Resumable is refused with 412', async () => {
      const res = await call(`${srv.url}/v1/uploads`, { method: 'POST', headers: { 'upload-length': '10' } });
      assert.equal(res.status, 412);
    });

    it('creation-with-upload stores the first bytes in the POST', async () => {
      const data = await pngOfSize(300_000);
      const { res, url } = await createUpload(srv.url, data.length, { filename: 'a.png' }, { 'content-type': 'application/offset+octet-stream' });
      assert.equal(res.status, 201);
      assert.equal(await offsetOf(url), 0);
      const res2 = await call(`${srv.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...TUS, 'upload-length': String(data.length), 'upload-metadata': tusMetadata({ filename: 'b.png' }), 'content-type': 'application/offset+octet-stream' },
        body: data,
      });
      assert.equal(res2.status, 201);
      assert.equal(res2.headers['upload-offset'], String(data.length));
      const id = String(res2.headers['sluice-file-id']);
      const file = await call(`${srv.url}/v1/files/${id}`);
      assert.equal(file.json<{ sha256: string }>().sha256, sha256(data));
    });

    it('a PATCH at the wrong offset is refused with 409 and changes nothing', async () => {
      const data = await pngOfSize(100_000);
      const { url } = await createUpload(srv.url, data.length);
      assert.equal((await patch(url, 0, data.subarray(0, 50_000))).status, 204);
      const res = await patch(url, 10, data.subarray(10, 60_000));
      assert.equal(res.status, 409);
      assert.equal(await offsetOf(url), 50_000);
    });

    it('Upload-Length over the file size limit is refused at creation with 413', async () => {
      const { res } = await createUpload(srv.url, 64 * MiB + 1);
      assert.equal(res.status, 413);
    });

    it('bytes beyond Upload-Length are refused and the upload is unchanged', async () => {
      const data = await pngOfSize(20_000);
      const { url } = await createUpload(srv.url, 10_000);
      const res = await patch(url, 0, data);
      assert.equal(res.status, 413);
      assert.equal(await offsetOf(url), 0);
    });

    it('checksum extension: a mismatching PATCH gets 460 and is discarded; a matching one is stored', async () => {
      const data = await pngOfSize(200_000);
      const { url } = await createUpload(srv.url, data.length, { filename: 'c.png' });
      const first = data.subarray(0, 120_000);
      const wrong = createHash('sha1').update('not these bytes').digest('base64');
      const bad = await patch(url, 0, first, { 'upload-checksum': `sha1 ${wrong}` });
      assert.equal(bad.status, 460);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'UPLOAD_CHECKSUM_MISMATCH');
      assert.equal(await offsetOf(url), 0);
      const right = createHash('sha1').update(first).digest('base64');
      assert.equal((await patch(url, 0, first, { 'upload-checksum': `sha1 ${right}` })).status, 204);
      assert.equal(await offsetOf(url), 120_000);
      const rest = data.subarray(120_000);
      const done = await patch(url, 120_000, rest, { 'upload-checksum': `sha256 ${createHash('sha256').update(rest).digest('base64')}` });
      assert.equal(done.status, 204);
      const file = await call(`${srv.url}/v1/files/${String(done.headers['sluice-file-id'])}`);
      assert.equal(file.json<{ sha256: string }>().sha256, sha256(data));
      const unsupported = await patch(url, 0, first, { 'upload-checksum': `crc32 ${right}` });
      assert.equal(unsupported.status, 400);
      assert.equal(unsupported.json<{ error: { code: string } }>().error.code, 'CHECKSUM_ALGORITHM_UNSUPPORTED');
    });

    it('termination removes the upload and every byte of it', async () => {
      const before = await leftovers(srv);
      const data = await pngOfSize(6 * MiB);
      const { url } = await createUpload(srv.url, 12 * MiB);
      assert.equal((await patch(url, 0, data)).status, 204);
      const del = await call(url, { method: 'DELETE', headers: TUS });
      assert.equal(del.status, 204);
      assert.equal((await head(url)).status, 404);
      const after = await settledLeftovers(srv);
      assert.deepEqual(after.keys.filter((k) => !before.keys.includes(k)), []);
      assert.equal(after.pending, before.pending);
    });

    it('a finished upload cannot be terminated, and HEAD still reports it complete', async () => {
      const data = await pngOfSize(50_000);
      const { url } = await createUpload(srv.url, data.length);
      const done = await patch(url, 0, data);
      assert.equal(done.status, 204);
      assert.equal((await call(url, { method: 'DELETE', headers: TUS })).status, 400);
      assert.equal(await offsetOf(url), data.length);
      assert.equal((await call(`${srv.url}/v1/files/${String(done.headers['sluice-file-id'])}/content`)).status, 200);
    });

    it('an upload id that is not ours is 404', async () => {
      assert.equal((await head(`${srv.url}/v1/uploads/not-an-id`)).status, 404);
      assert.equal((await head(`${srv.url}/v1/uploads/0190a0b0-0000-7000-8000-000000000000`)).status, 404);
    });
  });
}

describe('tus expiration', () => {
  it('a PATCH after the upload expired is refused with 410', async () => {
    // Long enough that the first PATCH lands inside it on a loaded machine; the test then waits for the
    // expiry the server announced, not for a guessed time.
    const srv = await startServer({ env: { SLUICE_TUS_EXPIRY_MS: '5000' } });
    try {
      const data = await pngOfSize(10_000);
      const { url } = await createUpload(srv.url, 20_000);
      const first = await patch(url, 0, data);
      assert.equal(first.status, 204);
      const expires = Date.parse(String(first.headers['upload-expires']));
      assert.ok(Number.isFinite(expires), `Upload-Expires: ${String(first.headers['upload-expires'])}`);
      // Upload-Expires is an HTTP date, whole seconds rounded down: the upload ends within the second after it.
      await until(() => Date.now() > expires + 1000, 'the upload to expire', 30_000);
      assert.equal((await patch(url, 10_000, data)).status, 410);
    } finally {
      await srv.close();
    }
  });
});
