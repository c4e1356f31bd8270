// The reaper removes stale work older than the max age (pending multipart
// uploads on S3, temp files on fs, originals that never got a manifest) and
// never touches committed files, young work, or service state.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { CreateMultipartUploadCommand, HeadObjectCommand, ListPartsCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { newFileId } from '../src/core/keys.ts';
import { sweepOnce } from '../src/core/reaper.ts';
import { bytesOf } from '../src/storage/storage.ts';
import { call, pngOfSize } from './helpers/http.ts';
import { s3ClientConfig } from './helpers/s3.ts';
import { issueKey, s3ApiEnv, sluiceS3Client } from './helpers/s3api.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const HOUR = 3600_000;

for (const backend of backends()) {
  describe(`reaper on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'reaper' });
    });
    after(() => srv.close());

    it('removes old stale work and keeps committed files, young work and service state', async () => {
      const prefix = srv.config.keyPrefix;
      const put = await call(`${srv.url}/v1/files/keep.png`, { method: 'PUT', body: await pngOfSize(2000) });
      assert.equal(put.status, 201);
      const kept = put.json<{ files: { id: string }[] }>().files[0]!.id;

      // An upload that crashed between storing the original (and a variant) and committing.
      const orphan = newFileId();
      await srv.storage.put(`${prefix}/default/${orphan}/original`, bytesOf(Buffer.from('orphan')), { contentType: 'image/png' });
      await srv.storage.put(`${prefix}/default/${orphan}/variants/thumb.webp`, bytesOf(Buffer.from('v')), { contentType: 'image/webp' });
      await srv.storage.put(`${prefix}/_system/state.json`, bytesOf(Buffer.from('{}')), { contentType: 'application/json' });

      // Backend upload state: a pending multipart upload, or a temp file.
      if (backend === 's3') {
        const client = new S3Client(s3ClientConfig(srv.s3!));
        const key = `${prefix}/default/${newFileId()}/original`;
        const mpu = await client.send(new CreateMultipartUploadCommand({ Bucket: srv.bucket!, Key: key }));
        await client.send(new UploadPartCommand({ Bucket: srv.bucket!, Key: key, UploadId: mpu.UploadId!, PartNumber: 1, Body: Buffer.alloc(1024) }));
        client.destroy();
      } else {
        const dir = path.join(srv.config.storage.kind === 'fs' ? srv.config.storage.dataDir : '', prefix, 'default', newFileId());
        await mkdir(dir, { recursive: true });
        const tmp = path.join(dir, '.sluice-tmp-crashed');
        await writeFile(tmp, 'partial');
      }
      const before = await leftovers(srv);
      assert.equal(before.pending, backend === 's3' ? 1 : 0);

      // Young: nothing is touched.
      const opts = { storage: srv.storage, keyPrefix: prefix, maxAgeMs: HOUR, log: silent };
      const young = await sweepOnce(opts);
      assert.deepEqual(young, { staleUploads: 0, orphanObjects: 0, orphanFiles: 0, abandonedCommits: 0, abandonedS3Uploads: 0 });
      assert.deepEqual((await leftovers(srv)).keys, before.keys);

      // Two hours later: the stale work goes, the committed file and service state stay.
      const old = await sweepOnce(opts, Date.now() + 2 * HOUR);
      assert.equal(old.staleUploads, 1);
      assert.equal(old.orphanFiles, 1);
      assert.equal(old.orphanObjects, 2);
      const left = await leftovers(srv);
      assert.equal(left.pending, 0);
      assert.deepEqual(left.keys.filter((k) => !k.includes('.sluice-tmp-')).sort(), [
        `${prefix}/_system/state.json`,
        `${prefix}/default/${kept}/manifest.json`,
        `${prefix}/default/${kept}/original`,
      ]);
      const got = await call(`${srv.url}/v1/files/${kept}/content`);
      assert.equal(got.status, 200);
    });
  });
}

for (const backend of backends()) {
  describe(`reaper and the S3 endpoint's multipart uploads on ${backend}`, () => {
    const acme = issueKey('acme');
    let srv: TestServer;
    let s3: S3Client;
    before(async () => {
      srv = await startServer({ backend, env: s3ApiEnv([acme]), label: 'reaper-s3api' });
      s3 = sluiceS3Client(srv.url, acme);
    });
    after(async () => {
      s3.destroy();
      await srv.close();
    });

    it('an upload neither completed nor aborted is removed past the max age; objects and young uploads stay', async () => {
      const prefix = srv.config.keyPrefix;
      const uploads = `${prefix}/_system/s3/acme/uploads/`;
      await s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'kept.png', Body: await pngOfSize(3000), ContentType: 'image/png' }));
      // Abandoned by its client after one part (a killed `aws s3 cp`).
      const mpu = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'acme', Key: 'big.png', ContentType: 'image/png' }));
      await s3.send(new UploadPartCommand({ Bucket: 'acme', Key: 'big.png', UploadId: mpu.UploadId!, PartNumber: 1, Body: await pngOfSize(6 * 1024 * 1024) }));
      const stateKeys = async () => (await leftovers(srv)).keys.filter((k) => k.startsWith(uploads));
      assert.ok((await stateKeys()).length >= 3, 'the upload record, a part record and its bytes');
      const everything = (await leftovers(srv)).keys;

      const opts = { storage: srv.storage, keyPrefix: prefix, maxAgeMs: HOUR, log: silent };
      assert.equal((await sweepOnce(opts)).abandonedS3Uploads, 0);
      assert.deepEqual((await leftovers(srv)).keys, everything, 'a young upload is left alone');

      const old = await sweepOnce(opts, Date.now() + 2 * HOUR);
      assert.equal(old.abandonedS3Uploads, 1);
      assert.deepEqual(await stateKeys(), []);
      await assert.rejects(s3.send(new ListPartsCommand({ Bucket: 'acme', Key: 'big.png', UploadId: mpu.UploadId! })), (err: Error) => err.name === 'NoSuchUpload');
      // The object index and the committed file are not upload state.
      assert.deepEqual((await leftovers(srv)).keys.sort(), everything.filter((k) => !k.startsWith(uploads)).sort());
      assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'acme', Key: 'kept.png' }))).ContentType, 'image/png');
    });
  });
}
