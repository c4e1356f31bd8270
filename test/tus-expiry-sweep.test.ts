// The expiry sweep: an upload that never finished is removed with all its
// storage, including the pending S3 multipart upload; a fresh upload and a
// committed file are left alone (the committed one only loses its tus bookkeeping).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTusService } from '../src/tus/service.ts';
import { SWEEP_GRACE_MS } from '../src/tus/sweep.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { createUpload, head, offsetOf, patch, settledLeftovers } from './helpers/tus.ts';
import { listPendingMultipartUploads } from './helpers/s3.ts';

const MiB = 1024 * 1024;
const EXPIRY_MS = 60_000;

for (const backend of backends()) {
  describe(`tus expiry sweep on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-sweep', env: { SLUICE_TUS_EXPIRY_MS: String(EXPIRY_MS), SLUICE_TUS_SWEEP_INTERVAL_MS: '0' } });
    });
    after(() => srv.close());

    it('removes expired unfinished uploads entirely and keeps the rest', async () => {
      const data = await pngOfSize(12 * MiB);
      const { url: stale } = await createUpload(srv.url, data.length, { filename: 'stale.png' });
      assert.equal((await patch(stale, 0, data.subarray(0, 6 * MiB))).status, 204);
      const small = await pngOfSize(10_000);
      const { url: done } = await createUpload(srv.url, small.length, { filename: 'done.png' });
      const finished = await patch(done, 0, small);
      const fileId = String(finished.headers['sluice-file-id']);
      if (backend === 's3') assert.equal((await listPendingMultipartUploads(srv.s3!, srv.bucket!)).length, 1);

      const tus = await createTusService({ config: srv.config, storage: srv.storage, log: srv.app.log });
      // Not yet expired: nothing happens.
      assert.deepEqual(await tus.sweep(), { expired: 0, tidied: 0 });
      assert.equal(await offsetOf(stale), 6 * MiB);

      // The sweep acts as another instance would, without the upload's lock: in real time an upload past
      // expiry + grace has no live lease anywhere (its PATCHes and HEADs answer 410), so wait until the server
      // has given back its idle lease too (it trusts its remembered parts only under that lease: s3-part-store.ts).
      await settledLeftovers(srv);
      const later = new Date(Date.now() + EXPIRY_MS + SWEEP_GRACE_MS + 1000);
      assert.deepEqual(await tus.sweep({ now: later }), { expired: 1, tidied: 1 });
      assert.equal((await head(stale)).status, 404);
      const left = await settledLeftovers(srv);
      assert.equal(left.pending, 0, 'no pending multipart upload');
      assert.deepEqual(left.keys, [`${srv.config.keyPrefix}/default/${fileId}/manifest.json`, `${srv.config.keyPrefix}/default/${fileId}/original`]);
      const content = await call(`${srv.url}/v1/files/${fileId}/content`);
      assert.equal(sha256(content.body), sha256(small));
      // Idempotent.
      assert.deepEqual(await tus.sweep({ now: later }), { expired: 0, tidied: 0 });
    });
  });
}
