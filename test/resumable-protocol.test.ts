// The IETF resumable-upload draft (draft-ietf-httpbis-resumable-upload, latest
// interop version 8) at /v1/uploads, one describe per section of the draft,
// as raw HTTP over loopback on both storage backends. Committed files are the
// same manifests as any upload: the sha256 is checked against GET /v1/files/:id.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { dialect, draft } from './helpers/resumable.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const V8 = dialect(8, false)['upload-draft-interop-version']!;
const PARTIAL = 'application/partial-upload';
const UNKNOWN = '01900000-0000-7000-8000-000000000000';
const IANA = 'https://iana.org/assignments/http-problem-types#';

const append = (offset: number, complete: boolean, extra: Record<string, string> = {}) => ({
  ...dialect(8, complete),
  'upload-offset': String(offset),
  'content-type': PARTIAL,
  ...extra,
});

for (const backend of backends()) {
  describe(`IETF resumable uploads on ${backend}`, () => {
    let srv: TestServer;
    const at = (location: unknown) => new URL(String(location), srv.url).toString();
    const created = async (headers: Record<string, string>, body?: Buffer) => {
      const res = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers, ...(body ? { body } : {}) });
      assert.equal(res.status, 201, res.body.toString());
      return { res, url: at(res.headers.location) };
    };
    const fileOf = async (id: unknown) => (await call(`${srv.url}/v1/files/${String(id)}`)).json<{ sha256: string; size: number; name: string }>();

    before(async () => {
      srv = await startServer({ backend, label: 'rufh-protocol', env: { SLUICE_MAX_FILE_BYTES: String(8 * MiB) } });
    });
    after(() => srv.close());

    describe('§ Upload Creation', () => {
      it('a complete body in one request: 104 with Location and Upload-Limit, then 201 with the committed file', async () => {
        const data = await pngOfSize(300 * KiB);
        const { res } = await created({ ...dialect(8, true), 'content-type': 'image/png', 'content-disposition': 'inline; filename="one go.png"' }, data);
        const interim = res.interim.filter((i) => i.status === 104);
        assert.equal(interim.length, 1, 'one 104 Upload Resumption Supported');
        assert.equal(interim[0]!.headers.location, res.headers.location, 'the same Location in interim and final answers');
        assert.match(String(interim[0]!.headers['upload-limit']), /max-size=8388608/);
        assert.equal(res.headers['upload-complete'], '?1');
        assert.equal(res.headers['upload-draft-interop-version'], V8);
        const body = res.json<{ files: { id: string; sha256: string; size: number; name: string }[] }>();
        assert.equal(body.files[0]!.sha256, sha256(data));
        assert.equal(body.files[0]!.name, 'one go.png');
        assert.equal(res.headers['sluice-file-id'], body.files[0]!.id);
        const file = await fileOf(body.files[0]!.id);
        assert.equal(file.sha256, sha256(data));
        assert.equal(file.size, data.length);
      });

      it('an empty incomplete creation answers the resource: 201, Location, Upload-Complete ?0, offset 0, Upload-Limit', async () => {
        const { res } = await created({ ...dialect(8, false), 'upload-length': String(2 * MiB) });
        assert.ok(String(res.headers.location).startsWith('/v1/uploads/'));
        assert.equal(res.headers['upload-complete'], '?0');
        assert.equal(res.headers['upload-offset'], '0');
        assert.match(String(res.headers['upload-limit']), /max-size=8388608/);
        assert.match(String(res.headers['upload-limit']), /max-age=\d+/);
      });

      it('an incomplete creation with part of the body stores that part', async () => {
        const data = await pngOfSize(1 * MiB);
        const { res } = await created({ ...dialect(8, false), 'upload-length': String(data.length) }, data.subarray(0, 256 * KiB));
        assert.equal(res.headers['upload-offset'], String(256 * KiB));
      });

      it('a length over the size limit is refused before any byte: 413 problem with Upload-Limit', async () => {
        const res = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...dialect(8, false), 'upload-length': String(9 * MiB) } });
        assert.equal(res.status, 413);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
        assert.match(String(res.headers['upload-limit']), /max-size=8388608/);
        const p = res.json<{ code: string; status: number; type: string }>();
        assert.equal(p.code, 'FILE_TOO_LARGE');
        assert.equal(p.status, 413);
      });

      it('Upload-Length disagreeing with Content-Length of a complete creation: inconsistent-upload-length', async () => {
        const data = await pngOfSize(10 * KiB);
        const res = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...dialect(8, true), 'upload-length': String(data.length + 1) }, body: data });
        assert.equal(res.status, 400);
        const p = res.json<{ type: string; code: string }>();
        assert.equal(p.type, `${IANA}inconsistent-upload-length`);
        assert.equal(p.code, 'UPLOAD_LENGTH_INCONSISTENT');
      });
    });

    describe('§ Offset Retrieval', () => {
      it('HEAD: 204 with Upload-Offset, Upload-Complete, Upload-Length, Upload-Limit, Cache-Control: no-store', async () => {
        const data = await pngOfSize(512 * KiB);
        const { url } = await created({ ...dialect(8, false), 'upload-length': String(data.length) }, data.subarray(0, 100 * KiB));
        const res = await draft(url, { method: 'HEAD' });
        assert.equal(res.status, 204);
        assert.equal(res.headers['upload-offset'], String(100 * KiB));
        assert.equal(res.headers['upload-complete'], '?0');
        assert.equal(res.headers['upload-length'], String(data.length));
        assert.match(String(res.headers['upload-limit']), /max-size=/);
        assert.equal(res.headers['cache-control'], 'no-store');
      });

      it('HEAD of an unknown upload: 404 problem UPLOAD_NOT_FOUND', async () => {
        const res = await draft(`${srv.url}/v1/uploads/${UNKNOWN}`, { method: 'HEAD', headers: { 'upload-draft-interop-version': V8 } });
        assert.equal(res.status, 404);
      });

      it('HEAD of a completed upload says complete and names the file', async () => {
        const data = await pngOfSize(64 * KiB);
        const { res: made } = await created({ ...dialect(8, true) }, data);
        const res = await draft(at(made.headers.location), { method: 'HEAD' });
        assert.equal(res.status, 204);
        assert.equal(res.headers['upload-complete'], '?1');
        assert.equal(res.headers['upload-offset'], String(data.length));
        assert.equal(res.headers['sluice-file-id'], made.headers['sluice-file-id']);
      });
    });

    describe('§ Upload Append', () => {
      it('appends in parts, the last one completing: 204 ?0 each, then 200 ?1 with the file; sha256 over the whole upload', async () => {
        const data = await pngOfSize(6 * MiB + 123);
        const { url } = await created({ ...dialect(8, false), 'content-type': 'image/png' });
        const cuts = [0, 2 * MiB + 7, 5 * MiB + 1, data.length];
        let res;
        for (let i = 0; i < cuts.length - 1; i++) {
          const last = i === cuts.length - 2;
          res = await draft(url, { method: 'PATCH', headers: append(cuts[i]!, last), body: data.subarray(cuts[i], cuts[i + 1]) });
          assert.equal(res.status, last ? 200 : 204, res.body.toString());
          assert.equal(res.headers['upload-complete'], last ? '?1' : '?0');
          assert.equal(res.headers['upload-offset'], String(cuts[i + 1]));
        }
        const body = res!.json<{ files: { id: string; sha256: string }[] }>();
        assert.equal(body.files[0]!.sha256, sha256(data));
        assert.equal((await fileOf(body.files[0]!.id)).sha256, sha256(data));
      });

      it('a body of unknown length (chunked) completing an upload of unknown length fixes the length at its end', async () => {
        const data = await pngOfSize(5 * MiB + 999);
        const { url } = await created({ ...dialect(8, false) });
        async function* chunked(buf: Buffer) {
          for (let i = 0; i < buf.length; i += 256 * KiB) yield buf.subarray(i, i + 256 * KiB);
        }
        const first = await draft(url, { method: 'PATCH', headers: append(0, false), body: chunked(data.subarray(0, 3 * MiB)) });
        assert.equal(first.status, 204, first.body.toString());
        const last = await draft(url, { method: 'PATCH', headers: append(3 * MiB, true), body: chunked(data.subarray(3 * MiB)) });
        assert.equal(last.status, 200, last.body.toString());
        assert.equal(last.json<{ files: { sha256: string }[] }>().files[0]!.sha256, sha256(data));
      });

      it('a wrong Upload-Offset: 409 mismatching-upload-offset with the right offset', async () => {
        const data = await pngOfSize(64 * KiB);
        const { url } = await created({ ...dialect(8, false) }, data.subarray(0, 10 * KiB));
        const res = await draft(url, { method: 'PATCH', headers: append(5 * KiB, false), body: data.subarray(5 * KiB) });
        assert.equal(res.status, 409);
        assert.equal(res.headers['upload-offset'], String(10 * KiB));
        const p = res.json<{ type: string; 'expected-offset': number; 'provided-offset': number; code: string }>();
        assert.equal(p.type, `${IANA}mismatching-upload-offset`);
        assert.equal(p['expected-offset'], 10 * KiB);
        assert.equal(p['provided-offset'], 5 * KiB);
        assert.equal(p.code, 'UPLOAD_OFFSET_MISMATCH');
      });

      it('an append that is not application/partial-upload: 415', async () => {
        const { url } = await created({ ...dialect(8, false) });
        const res = await draft(url, { method: 'PATCH', headers: append(0, false, { 'content-type': 'application/octet-stream' }), body: Buffer.alloc(10) });
        assert.equal(res.status, 415);
        assert.equal(res.json<{ code: string }>().code, 'UNSUPPORTED_CONTENT_TYPE');
      });

      it('bytes beyond the length are refused and the upload is deactivated', async () => {
        const data = await pngOfSize(64 * KiB);
        const { url } = await created({ ...dialect(8, false), 'upload-length': String(32 * KiB) });
        // Sent chunked, so no Content-Length can give it away before the bytes do.
        async function* body() {
          yield data;
        }
        const res = await draft(url, { method: 'PATCH', headers: append(0, false), body: body() });
        assert.equal(res.status, 400, res.body.toString());
        assert.equal(res.json<{ type: string }>().type, `${IANA}inconsistent-upload-length`);
        assert.equal((await draft(url, { method: 'HEAD' })).status, 404);
      });

      it('appending to a completed upload is refused: completed-upload (empty) or inconsistent length (bytes)', async () => {
        const data = await pngOfSize(64 * KiB);
        const { res: made } = await created({ ...dialect(8, true) }, data);
        const url = at(made.headers.location);
        const empty = await draft(url, { method: 'PATCH', headers: append(data.length, true), body: Buffer.alloc(0) });
        assert.equal(empty.status, 400);
        assert.equal(empty.json<{ type: string }>().type, `${IANA}completed-upload`);
        assert.equal(empty.headers['upload-complete'], '?1');
        const more = await draft(url, { method: 'PATCH', headers: append(data.length, true), body: Buffer.alloc(10) });
        assert.equal(more.status, 400);
        assert.equal(more.json<{ type: string }>().type, `${IANA}inconsistent-upload-length`);
      });
    });

    describe('§ Upload Cancellation', () => {
      it('DELETE: 204, then the resource is gone', async () => {
        const data = await pngOfSize(64 * KiB);
        const { url } = await created({ ...dialect(8, false) }, data.subarray(0, 20 * KiB));
        const res = await draft(url, { method: 'DELETE', headers: { 'upload-draft-interop-version': V8 } });
        assert.equal(res.status, 204);
        assert.equal((await draft(url, { method: 'HEAD' })).status, 404);
      });

      it('DELETE of a completed upload is refused; the file stays', async () => {
        const data = await pngOfSize(64 * KiB);
        const { res: made } = await created({ ...dialect(8, true) }, data);
        const res = await draft(at(made.headers.location), { method: 'DELETE' });
        assert.equal(res.status, 400);
        assert.equal(res.json<{ code: string }>().code, 'UPLOAD_ALREADY_COMPLETE');
        assert.equal((await fileOf(made.headers['sluice-file-id'])).sha256, sha256(data));
      });
    });

    describe('§ Limits (OPTIONS)', () => {
      it('OPTIONS names application/partial-upload in Accept-Patch and the limits in Upload-Limit', async () => {
        const res = await draft(`${srv.url}/v1/uploads`, { method: 'OPTIONS', headers: { 'upload-draft-interop-version': V8 } });
        assert.ok(res.status === 200 || res.status === 204, String(res.status));
        assert.match(String(res.headers['accept-patch']), /application\/partial-upload/);
        assert.match(String(res.headers['upload-limit']), /max-size=8388608/);
      });

      it('a plain (tus) OPTIONS answers both protocols', async () => {
        const res = await draft(`${srv.url}/v1/uploads`, { method: 'OPTIONS' });
        assert.equal(res.headers['tus-version'], '1.0.0');
        assert.match(String(res.headers['accept-patch']), /application\/partial-upload/);
      });
    });

    describe('§ Problem Types (RFC 9457)', () => {
      it('refusals are application/problem+json with type, title, status and our stable code', async () => {
        const res = await draft(`${srv.url}/v1/uploads/${UNKNOWN}`, { method: 'PATCH', headers: append(0, false), body: Buffer.alloc(1) });
        assert.equal(res.status, 404);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
        const p = res.json<Record<string, unknown>>();
        assert.equal(p.type, 'about:blank');
        assert.equal(p.status, 404);
        assert.equal(p.code, 'UPLOAD_NOT_FOUND');
        assert.equal(typeof p.title, 'string');
        assert.equal(typeof p.requestId, 'string');
      });
    });
  });
}
