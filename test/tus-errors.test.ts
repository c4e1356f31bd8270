// tus's own refusals answer in the service's JSON error shape with a stable
// code (src/tus/protocol-errors.ts), keep the tus headers, and keep the
// statuses tus clients act on. Raw HTTP on fs and S3, one request per code;
// plus the mapping table for every answer @tus/server has.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERRORS } from '@tus/utils';
import { errorCatalogue } from '../src/errors.ts';
import { lockKey } from '../src/tus/keys.ts';
import { TUS_ERROR_CODES, fromTusAnswer, fromTusError } from '../src/tus/protocol-errors.ts';
import { bytesOf } from '../src/storage/storage.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, type Answer } from './helpers/http.ts';
import { TUS, createUpload, patch } from './helpers/tus.ts';
import { until } from './helpers/wait.ts';

function assertCoded(res: Answer, status: number, code: string): void {
  assert.equal(res.status, status, `status for ${code}: ${res.body.toString()}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
  assert.equal(body.error.code, code);
  assert.ok(body.error.message.length > 0 && body.error.requestId.length > 0);
  assert.equal(res.headers['tus-resumable'], '1.0.0', `Tus-Resumable on ${code}`);
}

it('every answer @tus/server has maps to a catalogued code with its status (the lock timeout: 423, not 500)', () => {
  for (const [name, e] of Object.entries(ERRORS)) {
    const mapped = fromTusError(e)!;
    assert.equal(mapped.code, TUS_ERROR_CODES[name as keyof typeof ERRORS], name);
    assert.ok(mapped.code in errorCatalogue, name);
    if (name === 'ERR_LOCK_TIMEOUT') assert.equal(mapped.status, 423);
    else if (name === 'FILE_WRITE_ERROR') assert.equal(mapped.status, 503);
    else assert.equal(mapped.status, e.status_code, name);
  }
  assert.equal(fromTusAnswer(412, 'Tus-Resumable Required\n').code, 'TUS_VERSION_REQUIRED');
  assert.deepEqual(fromTusAnswer(400, 'Invalid upload-length upload-offset\n').details, { headers: ['upload-length', 'upload-offset'] });
  assert.equal(fromTusAnswer(404, 'Not found\n').code, 'ROUTE_NOT_FOUND');
  assert.equal(fromTusError(new Error('x')), undefined);
});

for (const backend of backends()) {
  describe(`tus errors as JSON on ${backend}`, () => {
    let srv: TestServer;
    // A second instance whose uploads expire soon; its upload is made first and checked last, so the wait overlaps the rest.
    let expiring: TestServer;
    let expiringUrl: string;
    let expires: number;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-errors', env: { SLUICE_MAX_FILE_BYTES: String(1024 * 1024), SLUICE_TUS_LOCK_TIMEOUT_MS: '500' } });
      expiring = await startServer({ backend, label: 'tus-errors-exp', env: { SLUICE_TUS_EXPIRY_MS: '5000' } });
      const { url } = await createUpload(expiring.url, 20_000);
      const first = await patch(url, 0, await pngOfSize(10_000));
      assert.equal(first.status, 204);
      expiringUrl = url;
      expires = Date.parse(String(first.headers['upload-expires']));
    });
    after(async () => {
      await srv.close();
      await expiring.close();
    });

    it('412 TUS_VERSION_REQUIRED without Tus-Resumable', async () => {
      assertCoded(await call(`${srv.url}/v1/uploads`, { method: 'POST', headers: { 'upload-length': '10' } }), 412, 'TUS_VERSION_REQUIRED');
    });

    it('400 TUS_HEADER_INVALID names the malformed header', async () => {
      const res = await call(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': 'ten' } });
      assertCoded(res, 400, 'TUS_HEADER_INVALID');
      assert.deepEqual(res.json<{ error: { details: unknown } }>().error.details, { headers: ['upload-length'] });
    });

    it('400 UPLOAD_LENGTH_INVALID without Upload-Length, 413 FILE_TOO_LARGE over the limit, 501 TUS_EXTENSION_UNSUPPORTED for concatenation', async () => {
      assertCoded(await call(`${srv.url}/v1/uploads`, { method: 'POST', headers: TUS }), 400, 'UPLOAD_LENGTH_INVALID');
      assertCoded((await createUpload(srv.url, 1024 * 1024 + 1)).res, 413, 'FILE_TOO_LARGE');
      assertCoded(await call(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, 'upload-concat': 'partial', 'upload-length': '10' } }), 501, 'TUS_EXTENSION_UNSUPPORTED');
    });

    it('PATCH refusals: 403 without Upload-Offset or Content-Type, 400 with another Content-Type, 409 at the wrong offset, 413 past Upload-Length', async () => {
      const data = await pngOfSize(20_000);
      const { url } = await createUpload(srv.url, 10_000);
      assertCoded(await call(url, { method: 'PATCH', headers: { ...TUS, 'content-type': 'application/offset+octet-stream' }, body: data }), 403, 'UPLOAD_OFFSET_REQUIRED');
      assertCoded(await call(url, { method: 'PATCH', headers: { ...TUS, 'upload-offset': '0' }, body: data.subarray(0, 100) }), 403, 'TUS_CONTENT_TYPE_REQUIRED');
      const wrongType = await patch(url, 0, data.subarray(0, 100), { 'content-type': 'application/octet-stream' });
      assertCoded(wrongType, 400, 'TUS_HEADER_INVALID');
      assertCoded(await patch(url, 5, data.subarray(0, 100)), 409, 'UPLOAD_OFFSET_MISMATCH');
      assertCoded(await patch(url, 0, data), 413, 'UPLOAD_LENGTH_EXCEEDED');
    });

    it('404 UPLOAD_NOT_FOUND for an unknown upload, 400 UPLOAD_ALREADY_COMPLETE for terminating a finished one', async () => {
      assertCoded(await patch(`${srv.url}/v1/uploads/0190a0b0-0000-7000-8000-000000000000`, 0, Buffer.from('x')), 404, 'UPLOAD_NOT_FOUND');
      const data = await pngOfSize(5_000);
      const { url } = await createUpload(srv.url, data.length);
      assert.equal((await patch(url, 0, data)).status, 204);
      assertCoded(await call(url, { method: 'DELETE', headers: TUS }), 400, 'UPLOAD_ALREADY_COMPLETE');
    });

    it('423 UPLOAD_LOCKED when another instance holds the upload\'s bucket lock', { skip: backend !== 's3' && 'the bucket lock is S3\'s' }, async () => {
      const { url } = await createUpload(srv.url, 10_000);
      const id = url.split('/').at(-1)!;
      const key = lockKey(srv.config.keyPrefix, { tenant: 'default', id });
      // The creation's own lock lingers for the upload's next request (s3-locker.ts): wait until it is given back.
      await until(async () => (await srv.storage.head(key)) === null, 'the creation to give back its lock');
      // A lock object as another (live) instance writes it: this one waits for it, then gives up.
      await srv.storage.put(key, bytesOf(Buffer.from('{}')), { contentType: 'application/json' });
      assertCoded(await patch(url, 0, await pngOfSize(1_000)), 423, 'UPLOAD_LOCKED');
    });

    it('410 UPLOAD_EXPIRED after the upload expired', async () => {
      // Upload-Expires is an HTTP date, whole seconds rounded down: the upload ends within the second after it.
      await until(() => Date.now() > expires + 1000, 'the upload to expire', 30_000);
      assertCoded(await patch(expiringUrl, 10_000, await pngOfSize(10_000)), 410, 'UPLOAD_EXPIRED');
    });
  });
}
