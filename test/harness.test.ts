// The test harness itself: the run's S3 server answers, and the helpers that
// other suites rely on to prove "nothing stranded" see what a plain client does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  createTestBucket,
  emptyAndDeleteBucket,
  listKeys,
  listPendingMultipartUploads,
  s3ClientConfig,
  s3TestServer,
} from './helpers/s3.ts';

test('S3 harness: bucket, objects and pending multipart uploads are visible to the helpers', async (t) => {
  const server = s3TestServer();
  if (server === null) {
    console.warn('harness.test.ts: no S3 server (SLUICE_TEST_S3=skip), S3 checks skipped');
    t.skip('no S3 server');
    return;
  }

  const bucket = await createTestBucket(server, 'harness');
  // A client with the SDK's defaults (checksums included), as application code would build it.
  const client = new S3Client(s3ClientConfig(server));
  t.after(async () => {
    client.destroy();
    await emptyAndDeleteBucket(server, bucket);
  });

  assert.match(bucket, /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/);
  assert.deepEqual(await listKeys(server, bucket), []);

  await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/hello.txt', Body: 'hello' }));
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'out/other.txt', Body: 'other' }));
  assert.deepEqual(await listKeys(server, bucket), ['in/hello.txt', 'out/other.txt']);
  assert.deepEqual(await listKeys(server, bucket, 'in/'), ['in/hello.txt']);

  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'in/big.bin' }));
  assert.ok(UploadId);
  const pending = [{ Key: 'in/big.bin', UploadId }];
  assert.deepEqual(await listPendingMultipartUploads(server, bucket), pending);
  // A directory-like prefix, which MinIO itself does not match (see the helper).
  assert.deepEqual(await listPendingMultipartUploads(server, bucket, 'in/'), pending);
  assert.deepEqual(await listPendingMultipartUploads(server, bucket, 'out/'), []);

  await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'in/big.bin', UploadId }));
  assert.deepEqual(await listPendingMultipartUploads(server, bucket), []);
});
