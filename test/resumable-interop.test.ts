// The draft's interop versions side by side on one server: the same upload
// (creation with a first part, offset retrieval, a last append) in each
// version's own spelling, from iOS 17's version 3 (Upload-Incomplete) to the
// latest, and a client of the final RFC that names no version. Each answer is
// in the spelling the client used; every upload commits the exact bytes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { dialect, draft, saysComplete } from './helpers/resumable.ts';
import { TUS } from './helpers/tus.ts';

const KiB = 1024;

describe('IETF resumable upload interop versions side by side', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ label: 'rufh-interop' });
  });
  after(() => srv.close());

  for (const version of [3, 4, 5, 6, 7, 8, undefined]) {
    it(`interop version ${version ?? '(none: the RFC)'}`, async () => {
      const data = await pngOfSize(700 * KiB + (version ?? 9));
      const cut = 300 * KiB;
      const made = await draft(`${srv.url}/v1/uploads`, {
        method: 'POST',
        headers: { ...dialect(version, false), 'upload-length': String(data.length), 'content-type': 'image/png' },
        body: data.subarray(0, cut),
      });
      assert.equal(made.status, 201, made.body.toString());
      assert.equal(saysComplete(made.headers), false);
      // Each version's own field, never the other's.
      if (version === 3) assert.equal(made.headers['upload-complete'], undefined);
      else assert.equal(made.headers['upload-incomplete'], undefined);
      assert.equal(made.headers['upload-draft-interop-version'], version === undefined ? undefined : String(version));
      // Upload-Limit from version 6 on; its lifetime key was `expires` in 6, `max-age` after.
      const limit = String(made.headers['upload-limit'] ?? '');
      if (version !== undefined && version < 6) assert.equal(limit, '');
      else if (version === 6) assert.match(limit, /expires=\d+/);
      else assert.match(limit, /max-age=\d+/);
      // A 104 with the Location only to a client that named a version.
      const interim = made.interim.filter((i) => i.status === 104);
      assert.equal(interim.length, version === undefined ? 0 : 1);
      const url = new URL(String(made.headers.location), srv.url).toString();

      const head = await draft(url, { method: 'HEAD', headers: dialect(version, false) });
      assert.equal(head.status, 204);
      assert.equal(head.headers['upload-offset'], String(cut));
      assert.equal(saysComplete(head.headers), false);

      // Versions 3 to 5 named no media type for appends: iOS 17 sends none.
      const type: Record<string, string> = version !== undefined && version < 6 ? {} : { 'content-type': 'application/partial-upload' };
      const last = await draft(url, {
        method: 'PATCH',
        headers: { ...dialect(version, true), 'upload-offset': String(cut), ...type },
        body: data.subarray(cut),
      });
      assert.equal(last.status, 200, last.body.toString());
      assert.equal(saysComplete(last.headers), true);
      const file = last.json<{ files: { id: string; sha256: string }[] }>().files[0]!;
      assert.equal(file.sha256, sha256(data));
      assert.equal((await call(`${srv.url}/v1/files/${file.id}`)).json<{ sha256: string }>().sha256, sha256(data));
    });
  }

  it('an unknown interop version is refused with the supported list', async () => {
    const res = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers: { 'upload-draft-interop-version': '99', 'upload-complete': '?0' } });
    assert.equal(res.status, 400);
    const p = res.json<{ code: string; supported: number[] }>();
    assert.equal(p.code, 'UPLOAD_INTEROP_UNSUPPORTED');
    assert.deepEqual(p.supported, [3, 4, 5, 6, 7, 8]);
  });

  it('one upload, both protocols: created by the draft, inspected and finished by tus', async () => {
    const data = await pngOfSize(200 * KiB);
    const made = await draft(`${srv.url}/v1/uploads`, {
      method: 'POST',
      headers: { ...dialect(8, false), 'upload-length': String(data.length) },
      body: data.subarray(0, 50 * KiB),
    });
    const url = new URL(String(made.headers.location), srv.url).toString();
    const tusHead = await call(url, { method: 'HEAD', headers: TUS });
    assert.equal(tusHead.status, 200);
    assert.equal(tusHead.headers['upload-offset'], String(50 * KiB));
    const done = await call(url, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': String(50 * KiB), 'content-type': 'application/offset+octet-stream' },
      body: data.subarray(50 * KiB),
    });
    assert.equal(done.status, 204, done.body.toString());
    const id = String(done.headers['sluice-file-id']);
    assert.equal((await call(`${srv.url}/v1/files/${id}`)).json<{ sha256: string }>().sha256, sha256(data));
    const draftHead = await draft(url, { method: 'HEAD' });
    assert.equal(draftHead.headers['upload-complete'], '?1');
  });
});
