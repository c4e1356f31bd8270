// The tus expiry sweep's cost does not grow with the bucket: for each expired
// upload it asks S3 for that upload's own pending multipart uploads (one
// lookup by its key), never for every pending multipart upload in the bucket.
// Before, E expired uploads in a bucket with P other pending uploads made the
// sweep read E × P upload entries; the counts below would have shown 3 × 25.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, type S3Client } from '@aws-sdk/client-s3';
import { newFileId } from '../src/core/keys.ts';
import { baseStorage } from '../src/storage/instrumented.ts';
import { S3Storage } from '../src/storage/s3.ts';
import { createTusService } from '../src/tus/service.ts';
import { SWEEP_GRACE_MS } from '../src/tus/sweep.ts';
import { createUpload, head } from './helpers/tus.ts';
import { listPendingMultipartUploads } from './helpers/s3.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const EXPIRY_MS = 60_000;
const FOREIGN = 25;
const EXPIRED = 3;

describe('tus expiry sweep on s3: one bounded lookup per expired upload', { skip: !backends().includes('s3') }, () => {
  let srv: TestServer;
  let client: S3Client;
  before(async () => {
    srv = await startServer({ backend: 's3', label: 'tus-sweep-bounded', env: { SLUICE_TUS_EXPIRY_MS: String(EXPIRY_MS), SLUICE_TUS_SWEEP_INTERVAL_MS: '0' } });
    const adapter = baseStorage(srv.storage);
    assert.ok(adapter instanceof S3Storage);
    client = adapter.client;
  });
  after(() => srv.close());

  it('reads only the expired uploads\' own multipart entries, and leaves other pending uploads alone', async () => {
    const foreign: { Key: string; UploadId: string }[] = [];
    for (let i = 0; i < FOREIGN; i++) {
      const Key = `${srv.config.keyPrefix}/other/${newFileId()}/original`;
      const mpu = await client.send(new CreateMultipartUploadCommand({ Bucket: srv.bucket!, Key }));
      foreign.push({ Key, UploadId: mpu.UploadId! });
    }
    const urls: string[] = [];
    for (let i = 0; i < EXPIRED; i++) {
      const { res, url } = await createUpload(srv.url, 10_000, { filename: `e${i}.png` });
      assert.equal(res.status, 201);
      urls.push(url);
    }

    // Every multipart-upload entry S3 hands back to a listing during the sweep.
    let listed = 0;
    let lookups = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'ListMultipartUploadsCommand') {
          lookups++;
          listed += (out.output as { Uploads?: unknown[] }).Uploads?.length ?? 0;
        }
        return out;
      },
      { step: 'initialize', name: 'countMultipartListings' },
    );
    try {
      const tus = await createTusService({ config: srv.config, storage: srv.storage, log: srv.app.log });
      const later = new Date(Date.now() + EXPIRY_MS + SWEEP_GRACE_MS + 1000);
      assert.deepEqual(await tus.sweep({ now: later }), { expired: EXPIRED, tidied: 0 });
    } finally {
      client.middlewareStack.remove('countMultipartListings');
    }
    assert.ok(lookups <= EXPIRED, `${lookups} multipart listings for ${EXPIRED} expired uploads`);
    // At most the expired uploads' own entries (their store may hold one each), none of the others.
    assert.ok(listed <= EXPIRED, `the sweep read ${listed} multipart-upload entries for ${EXPIRED} expired uploads`);
    for (const url of urls) assert.equal((await head(url)).status, 404);

    const pending = await listPendingMultipartUploads(srv.s3!, srv.bucket!);
    assert.deepEqual(pending.map((p) => p.Key).sort(), foreign.map((f) => f.Key).sort());
    for (const f of foreign) await client.send(new AbortMultipartUploadCommand({ Bucket: srv.bucket!, ...f }));
  });
});
