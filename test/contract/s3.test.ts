import { test } from 'node:test';
import { S3Storage } from '../../src/storage/s3.ts';
import { createTestBucket, emptyAndDeleteBucket, listPendingMultipartUploads, s3TestServer } from '../helpers/s3.ts';
import { storageContract } from './storage-contract.ts';

const server = s3TestServer();
if (!server) {
  test('s3: storage contract', (t) => t.skip('no S3 server (see scripts/test.ts)'));
} else {
  for (const uploader of ['parts', 'lib-storage'] as const) storageContract({
    name: `s3 (${uploader})`,
    async make() {
      const bucket = await createTestBucket(server, 'contract');
      const storage = new S3Storage({
        endpoint: server.endpoint,
        region: server.region,
        bucket,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
        forcePathStyle: true,
        checksum: 'when_supported',
        partSize: 5 * 1024 * 1024,
        queueSize: 4,
        uploader,
        provider: 'minio',
        maxParts: 10_000,
        minPartSize: 5 * 1024 * 1024,
        maxPartSize: 5 * 1024 * 1024 * 1024,
        equalParts: false,
        maxObjectBytes: 5 * 1024 * 1024 * 1024,
      });
      return {
        storage,
        pendingUploads: async () => (await listPendingMultipartUploads(server, bucket)).length,
        cleanup: async () => {
          await storage.close();
          await emptyAndDeleteBucket(server, bucket);
        },
      };
    },
  });
}
