// The S3 server a test run talks to, and admin operations tests use to set up
// and inspect buckets. scripts/test.ts decides the server and passes it down
// in S3_TEST_* variables; SLUICE_TEST_S3=skip means there is none.
import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';

export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface PendingMultipartUpload {
  Key: string;
  UploadId: string;
}

/** The run's S3 server, or null when S3 suites are to be skipped. Throws if the run was not set up by scripts/test.ts. */
export function s3TestServer(): S3TestServer | null {
  if (process.env.SLUICE_TEST_S3 === 'skip') return null;
  const endpoint = process.env.S3_TEST_ENDPOINT;
  const accessKeyId = process.env.S3_TEST_ACCESS_KEY_ID;
  const secretAccessKey = process.env.S3_TEST_SECRET_ACCESS_KEY;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error(
      'S3_TEST_ENDPOINT, S3_TEST_ACCESS_KEY_ID and S3_TEST_SECRET_ACCESS_KEY must be set ' +
        '(run tests through `npm test`, which starts MinIO, or set SLUICE_TEST_S3=skip)',
    );
  }
  return { endpoint, accessKeyId, secretAccessKey, region: process.env.S3_TEST_REGION || 'us-east-1' };
}

/** Client settings for the test server, for tests that build their own S3Client. */
export function s3ClientConfig(server: S3TestServer): S3ClientConfig {
  return {
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    forcePathStyle: true, // MinIO on loopback has no virtual-host DNS
  };
}

// One admin client per server; its idle keep-alive sockets are unref'd, so it never holds a test process open.
const adminClients = new Map<string, S3Client>();

function adminClient(server: S3TestServer): S3Client {
  const key = `${server.endpoint}\n${server.accessKeyId}`;
  let client = adminClients.get(key);
  if (client === undefined) {
    // Checksums only where the API demands them (DeleteObjects): setup should not depend on
    // the SDK's default-checksum behaviour, which is itself something tests may examine.
    client = new S3Client({
      ...s3ClientConfig(server),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    adminClients.set(key, client);
  }
  return client;
}

/** Bucket rules: 3-63 chars of [a-z0-9-], starting and ending with a letter or digit. */
function bucketName(label: string): string {
  const slug = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30)
    .replace(/-+$/, '');
  const unique = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  return slug === '' ? `sluice-test-${unique}` : `sluice-test-${slug}-${unique}`;
}

/** Creates a fresh bucket whose name contains `label` and returns its name. */
export async function createTestBucket(server: S3TestServer, label: string): Promise<string> {
  const bucket = bucketName(label);
  await adminClient(server).send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Every key in the bucket under `prefix`, in S3's (lexicographic) order. */
export async function listKeys(server: S3TestServer, bucket: string, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client: adminClient(server) }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined) keys.push(object.Key);
    }
  }
  return keys;
}

/**
 * Multipart uploads started and neither completed nor aborted (what an adapter
 * strands when it fails to abort), for keys starting with `prefix`.
 *
 * The prefix is applied here, not sent: MinIO answers ListMultipartUploads with
 * nothing for a prefix that is not a whole key ("dir/" misses "dir/a.bin"), while
 * listing the whole bucket works on MinIO and AWS alike.
 */
export async function listPendingMultipartUploads(
  server: S3TestServer,
  bucket: string,
  prefix?: string,
): Promise<PendingMultipartUpload[]> {
  const uploads: PendingMultipartUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await adminClient(server).send(
      new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const { Key, UploadId } of page.Uploads ?? []) {
      if (Key === undefined || UploadId === undefined) continue;
      if (prefix === undefined || Key.startsWith(prefix)) uploads.push({ Key, UploadId });
    }
    if (page.IsTruncated !== true) return uploads;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** Aborts pending uploads, deletes every object, deletes the bucket. A bucket that is already gone is fine. */
export async function emptyAndDeleteBucket(server: S3TestServer, bucket: string): Promise<void> {
  const client = adminClient(server);
  try {
    for (const upload of await listPendingMultipartUploads(server, bucket)) {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
    }
    const keys = await listKeys(server, bucket);
    // DeleteObjects takes at most 1000 keys per request.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      const result = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
      const failed = result.Errors ?? [];
      if (failed.length > 0) {
        throw new Error(`could not delete ${failed.length} objects from ${bucket}, first: ${failed[0]?.Key} ${failed[0]?.Code}`);
      }
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (err instanceof Error && err.name === 'NoSuchBucket') return;
    throw err;
  }
}
