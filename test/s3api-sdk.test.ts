// The S3 endpoint through the AWS SDK v3 S3Client, over loopback against a
// real server on each backend: put/get/range/head/list/delete, a multipart
// upload with lib-storage, signature and presign refusals, a type refusal.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3ServiceException,
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { call, elf, sha256 } from './helpers/http.ts';
import { presignedUrl } from './helpers/s3api.ts';
import { issueKey, s3ApiEnv, sluiceS3Client } from './helpers/s3api.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

async function s3Error(p: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return err;
    throw err;
  }
  assert.fail('expected an S3 error');
}

for (const backend of backends()) {
  describe(`S3 endpoint with the AWS SDK (${backend})`, () => {
    let srv: TestServer;
    const acme = issueKey('acme');
    const beta = issueKey('beta');
    const text = (s: string) => Buffer.from(`sluice s3 test: ${s}\n`);
    before(async () => {
      srv = await startServer({ backend, env: s3ApiEnv([acme, beta]), label: 's3api-sdk' });
    });
    after(() => srv.close());

    test('PutObject then GetObject, HeadObject, Range; the object is a sluice file', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const body = text('hello '.repeat(100));
      const put = await s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'docs/hello.txt', Body: body, ContentType: 'text/plain' }));
      assert.equal(put.ETag, `"${sha256(body)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'acme', Key: 'docs/hello.txt' }));
      assert.equal(Buffer.from(await got.Body!.transformToByteArray()).toString(), body.toString());
      assert.equal(got.ContentType, 'text/plain');
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'acme', Key: 'docs/hello.txt' }));
      assert.equal(head.ContentLength, body.length);
      const range = await s3.send(new GetObjectCommand({ Bucket: 'acme', Key: 'docs/hello.txt', Range: 'bytes=7-9' }));
      assert.equal(Buffer.from(await range.Body!.transformToByteArray()).toString(), body.subarray(7, 10).toString());
      assert.equal(range.ContentRange, `bytes 7-9/${body.length}`);
      // The same file through /v1 (auth is off there in this test server: the default tenant) is not visible;
      // the file lives under the tenant of the key.
      const keys = (await srv.storage.list({ prefix: `${srv.config.keyPrefix}/acme/` })).objects.map((o) => o.key);
      assert.ok(keys.some((k) => k.endsWith('/manifest.json')), keys.join());
    });

    test('a streamed body (aws-chunked with a trailer checksum) is decoded and verified', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const body = Buffer.concat([text('stream'), Buffer.alloc(300_000, 'x')]);
      await s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'stream.txt', Body: Readable.from([body.subarray(0, 100_000), body.subarray(100_000)]), ContentLength: body.length }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'acme', Key: 'stream.txt' }));
      assert.equal(sha256(await got.Body!.transformToByteArray()), sha256(body));
    });

    test('HeadBucket of the own bucket; another tenant\'s bucket is AccessDenied', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      await s3.send(new HeadBucketCommand({ Bucket: 'acme' }));
      const e = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'beta', Key: 'x.txt', Body: text('x') })));
      assert.equal(e.name, 'AccessDenied');
      assert.equal(e.$metadata.httpStatusCode, 403);
    });

    test('ListObjectsV2 with prefix, delimiter and pagination; DeleteObject', async () => {
      const s3 = sluiceS3Client(srv.url, beta);
      for (const k of ['a/1.txt', 'a/2.txt', 'a/b/3.txt', 'c.txt']) await s3.send(new PutObjectCommand({ Bucket: 'beta', Key: k, Body: text(k) }));
      const all = await s3.send(new ListObjectsV2Command({ Bucket: 'beta' }));
      assert.deepEqual(all.Contents?.map((o) => o.Key), ['a/1.txt', 'a/2.txt', 'a/b/3.txt', 'c.txt']);
      assert.equal(all.Contents?.[0]?.Size, text('a/1.txt').length);
      const dir = await s3.send(new ListObjectsV2Command({ Bucket: 'beta', Prefix: 'a/', Delimiter: '/' }));
      assert.deepEqual(dir.Contents?.map((o) => o.Key), ['a/1.txt', 'a/2.txt']);
      assert.deepEqual(dir.CommonPrefixes?.map((p) => p.Prefix), ['a/b/']);
      const p1 = await s3.send(new ListObjectsV2Command({ Bucket: 'beta', MaxKeys: 3 }));
      assert.equal(p1.IsTruncated, true);
      const p2 = await s3.send(new ListObjectsV2Command({ Bucket: 'beta', MaxKeys: 3, ContinuationToken: p1.NextContinuationToken }));
      assert.deepEqual(p2.Contents?.map((o) => o.Key), ['c.txt']);
      await s3.send(new DeleteObjectCommand({ Bucket: 'beta', Key: 'c.txt' }));
      const e = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'beta', Key: 'c.txt' })));
      assert.equal(e.name, 'NoSuchKey');
      // Overwriting a key replaces its file: one file left per key.
      await s3.send(new PutObjectCommand({ Bucket: 'beta', Key: 'a/1.txt', Body: text('again') }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'beta', Key: 'a/1.txt' }));
      assert.equal(await got.Body!.transformToString(), text('again').toString());
      const manifests = (await srv.storage.list({ prefix: `${srv.config.keyPrefix}/beta/` })).objects.filter((o) => o.key.endsWith('manifest.json'));
      assert.equal(manifests.length, 3);
    });

    test('a wrong secret is SignatureDoesNotMatch, an unknown key InvalidAccessKeyId', async () => {
      const bad = sluiceS3Client(srv.url, { accessKeyId: acme.accessKeyId, secretAccessKey: 'wrong' + acme.secretAccessKey });
      const e = await s3Error(bad.send(new PutObjectCommand({ Bucket: 'acme', Key: 'no.txt', Body: text('no') })));
      assert.equal(e.name, 'SignatureDoesNotMatch');
      assert.equal(e.$metadata.httpStatusCode, 403);
      const unknown = sluiceS3Client(srv.url, { accessKeyId: 'SKUNKNOWNUNKNOWNUNKN', secretAccessKey: 'x' });
      assert.equal((await s3Error(unknown.send(new HeadObjectCommand({ Bucket: 'acme', Key: 'docs/hello.txt' })))).$metadata.httpStatusCode, 403);
      assert.equal((await s3Error(unknown.send(new ListObjectsV2Command({ Bucket: 'acme' })))).name, 'InvalidAccessKeyId');
    });

    test('an ELF named .jpg is refused with an S3 error carrying TYPE_NOT_ALLOWED; nothing is stored', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const e = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'cat.jpg', Body: elf(), ContentType: 'image/jpeg' })));
      assert.equal(e.name, 'InvalidRequest');
      assert.equal(e.$metadata.httpStatusCode, 415);
      assert.match(e.message, /^TYPE_NOT_ALLOWED: /);
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'acme', Key: 'cat.jpg' })))).$metadata.httpStatusCode, 404);
    });

    test('a checksum that does not match is BadDigest, a malformed one InvalidDigest; nothing is stored', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const body = text('checked');
      const crc = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'sum/crc.txt', Body: body, ChecksumCRC32: 'AAAAAA==' })));
      assert.equal(crc.name, 'BadDigest');
      assert.equal(crc.$metadata.httpStatusCode, 400);
      const md5 = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'sum/md5.txt', Body: body, ContentMD5: Buffer.alloc(16).toString('base64') })));
      assert.equal(md5.name, 'BadDigest');
      const bad = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'sum/bad.txt', Body: body, ContentMD5: 'nope' })));
      assert.equal(bad.name, 'InvalidDigest');
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'acme', Prefix: 'sum/' }));
      assert.equal(listed.KeyCount, 0);
    });

    test('a presigned GET URL works; an expired one is refused', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const body = text('presigned');
      await s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'shared/p.txt', Body: body }));
      const ok = await call(await presignedUrl(srv.url, acme, '/s3/acme/shared/p.txt', { expiresIn: 300 }));
      assert.equal(ok.status, 200, ok.body.toString());
      assert.equal(ok.body.toString(), body.toString());
      const old = await call(await presignedUrl(srv.url, acme, '/s3/acme/shared/p.txt', { expiresIn: 60, signingDate: new Date(Date.now() - 3600_000) }));
      assert.equal(old.status, 403);
      assert.match(old.body.toString(), /<Code>AccessDenied<\/Code><Message>Request has expired/);
    });

    test('a multipart upload with lib-storage is one sluice file; ListParts and AbortMultipartUpload', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const line = Buffer.from('multipart line of text for the s3 endpoint test\n');
      const body = Buffer.concat(Array.from({ length: Math.ceil((11 * 1024 * 1024) / line.length) }, () => line));
      const up = new Upload({ client: s3, params: { Bucket: 'acme', Key: 'big/notes.txt', Body: Readable.from([body]), ContentType: 'text/plain' }, partSize: 5 * 1024 * 1024, queueSize: 2 });
      const done = await up.done();
      assert.equal(done.ETag, `"${sha256(body)}"`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'acme', Key: 'big/notes.txt' }));
      assert.equal(sha256(await got.Body!.transformToByteArray()), sha256(body));
      assert.equal(got.ContentLength, body.length);
      // No upload state is left behind.
      assert.deepEqual((await srv.storage.list({ prefix: `${srv.config.keyPrefix}/_system/s3/acme/uploads/` })).objects, []);

      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'acme', Key: 'big/aborted.txt' }));
      const part = await s3.send(new UploadPartCommand({ Bucket: 'acme', Key: 'big/aborted.txt', UploadId, PartNumber: 1, Body: text('part one') }));
      const parts = await s3.send(new ListPartsCommand({ Bucket: 'acme', Key: 'big/aborted.txt', UploadId }));
      assert.deepEqual(parts.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size]), [[1, part.ETag, text('part one').length]]);
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'acme', Key: 'big/aborted.txt', UploadId }));
      assert.equal((await s3Error(s3.send(new ListPartsCommand({ Bucket: 'acme', Key: 'big/aborted.txt', UploadId })))).name, 'NoSuchUpload');
      assert.deepEqual((await srv.storage.list({ prefix: `${srv.config.keyPrefix}/_system/s3/acme/uploads/` })).objects, []);
    });

    test('a multipart upload of an ELF is refused at its first part; invalid UTF-8 in a later part at completion', async () => {
      const s3 = sluiceS3Client(srv.url, acme);
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'acme', Key: 'evil.jpg', ContentType: 'image/jpeg' }));
      const e = await s3Error(s3.send(new UploadPartCommand({ Bucket: 'acme', Key: 'evil.jpg', UploadId, PartNumber: 1, Body: elf() })));
      assert.equal(e.$metadata.httpStatusCode, 415);
      assert.match(e.message, /^TYPE_NOT_ALLOWED: /);
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'acme', Key: 'evil.jpg', UploadId }));

      const t = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'acme', Key: 'mixed.txt', ContentType: 'text/plain' }));
      const first = Buffer.alloc(5 * 1024 * 1024, 'a');
      const p1 = await s3.send(new UploadPartCommand({ Bucket: 'acme', Key: 'mixed.txt', UploadId: t.UploadId, PartNumber: 1, Body: first }));
      const p2 = await s3.send(new UploadPartCommand({ Bucket: 'acme', Key: 'mixed.txt', UploadId: t.UploadId, PartNumber: 2, Body: Buffer.from([0xff, 0xfe, 0x00, 0x01]) }));
      const done = await s3Error(
        s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: 'acme',
            Key: 'mixed.txt',
            UploadId: t.UploadId,
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] },
          }),
        ),
      );
      assert.equal(done.$metadata.httpStatusCode, 415);
      assert.match(done.message, /^TYPE_NOT_ALLOWED: .*UTF-8/);
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'acme', Key: 'mixed.txt' })))).$metadata.httpStatusCode, 404);
    });

    test('a key without files:write cannot put; a revoked key is refused', async () => {
      const reader = issueKey('acme', ['files:read']);
      const doomed = issueKey('acme');
      const own = await startServer({ backend, env: s3ApiEnv([reader, doomed]), label: 's3api-scopes' });
      try {
        const e = await s3Error(sluiceS3Client(own.url, reader).send(new PutObjectCommand({ Bucket: 'acme', Key: 'ro.txt', Body: text('ro') })));
        assert.equal(e.name, 'AccessDenied');
        assert.match(e.message, /files:write/);
        const s3 = sluiceS3Client(own.url, doomed);
        await s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'before.txt', Body: text('before') }));
        await own.app.revocations.revoke({ subject: `s3key:${doomed.accessKeyId}` });
        const r = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'acme', Key: 'before.txt' })));
        assert.equal(r.name, 'AccessDenied');
        assert.match(r.message, /revoked/);
      } finally {
        await own.close();
      }
    });

    test('a file over SLUICE_MAX_FILE_BYTES is EntityTooLarge, with a Content-Length or aws-chunked', async () => {
      const small = await startServer({ backend, env: { ...s3ApiEnv([acme]), SLUICE_MAX_FILE_BYTES: '1000' }, label: 's3api-limit' });
      try {
        const s3 = sluiceS3Client(small.url, acme);
        const big = Buffer.alloc(2000, 'b');
        const e = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'big.txt', Body: big })));
        assert.equal(e.name, 'EntityTooLarge');
        assert.match(e.message, /^FILE_TOO_LARGE: /);
        const streamed = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'acme', Key: 'big2.txt', Body: Readable.from([big]), ContentLength: big.length })));
        assert.equal(streamed.name, 'EntityTooLarge');
        assert.equal((await s3.send(new ListObjectsV2Command({ Bucket: 'acme' }))).KeyCount, 0);
      } finally {
        await small.close();
      }
    });

    test('raw: an error is an S3 XML document', async () => {
      const r = await call(`${srv.url}/s3/acme/x.txt`, { method: 'GET' });
      assert.equal(r.status, 403);
      assert.match(String(r.headers['content-type']), /application\/xml/);
      assert.match(r.body.toString(), /<Error><Code>AccessDenied<\/Code>/);
    });
  });
}
