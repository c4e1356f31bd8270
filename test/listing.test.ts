// GET /v1/files pages through committed files oldest first with a cursor.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, type UploadedFile } from './helpers/http.ts';

for (const backend of backends()) {
  describe(`listing on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'listing' });
    });
    after(() => srv.close());

    it('pages with limit and cursor visit every file once, in upload order', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await call(`${srv.url}/v1/files/n${i}.txt`, { method: 'PUT', body: `file ${i}` });
        ids.push(r.json<{ files: UploadedFile[] }>().files[0]!.id);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await call(`${srv.url}/v1/files?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200);
        const page = r.json<{ files: UploadedFile[]; nextCursor?: string }>();
        seen.push(...page.files.map((f) => f.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      assert.deepEqual(seen, ids);
    });

    it('bad parameters are 400', async () => {
      assert.equal((await call(`${srv.url}/v1/files?limit=0`)).status, 400);
      assert.equal((await call(`${srv.url}/v1/files?limit=5000`)).status, 400);
      const bad = await call(`${srv.url}/v1/files?cursor=nope`);
      assert.equal(bad.status, 400);
      assert.equal(bad.json<{ error: { code: string } }>().error.code, 'INVALID_CURSOR');
    });
  });
}
