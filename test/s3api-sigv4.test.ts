// SigV4 verification without a server: AWS's published streaming example
// (seed and chunk signatures from the S3 documentation, "Transferring Payload
// in Multiple Chunks"), and presigned URLs made by the AWS SDK's own signer.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { AwsChunkedDecoder, chunkSigningOf } from '../src/s3api/aws-chunked.ts';
import { S3Error } from '../src/s3api/errors.ts';
import { SigV4Verifier, type CredentialLookup } from '../src/s3api/sigv4.ts';
import { Sha256 } from './helpers/s3api.ts';

const AKID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const lookup: CredentialLookup = {
  lookup: (id) =>
    id === AKID ? { secretAccessKey: SECRET, principal: { subject: 's3key:x', tenant: 'acme', scopes: new Set(['files:read']), issuedAt: 0, kind: 'api-key' } } : undefined,
};
const verifier = new SigV4Verifier(lookup, { maxPresignS: 7 * 86_400 });

async function rejected(p: Promise<unknown>): Promise<S3Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3Error) return err;
    throw err;
  }
  assert.fail('expected an S3Error');
}

function chunkedBody(sigs: string[]): Buffer {
  const a = Buffer.alloc(65536, 'a');
  const b = Buffer.alloc(1024, 'a');
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`), a, Buffer.from('\r\n'),
    Buffer.from(`400;chunk-signature=${sigs[1]}\r\n`), b, Buffer.from('\r\n'),
    Buffer.from(`0;chunk-signature=${sigs[2]}\r\n\r\n`),
  ]);
}

const AWS_EXAMPLE = {
  method: 'PUT',
  rawUrl: '/examplebucket/chunkObject.txt',
  headers: {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    authorization:
      `AWS4-HMAC-SHA256 Credential=${AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9`,
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
  },
};
const EXAMPLE_NOW = Date.UTC(2013, 4, 24, 0, 1);
const EXAMPLE_CHUNK_SIGS = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];

async function drain(gen: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of gen) n += c.length;
  return n;
}

test("AWS's streaming example: the seed signature and every chunk signature verify", async () => {
  const v = await verifier.verify(AWS_EXAMPLE, EXAMPLE_NOW);
  assert.deepEqual(v.payload, { kind: 'streaming-signed', trailer: false });
  const body = chunkedBody(EXAMPLE_CHUNK_SIGS);
  assert.equal(body.length, 66824);
  const decoder = new AwsChunkedDecoder({ signing: chunkSigningOf(v), decodedLength: 66560 });
  // Fed in odd-sized pieces, so chunk headers and data straddle reads.
  const pieces = (async function* () {
    for (let i = 0; i < body.length; i += 777) yield body.subarray(i, i + 777);
  })();
  assert.equal(await drain(decoder.decode(pieces)), 66560);
});

test('a changed byte or a wrong chunk signature fails the stream with SignatureDoesNotMatch', async () => {
  const v = await verifier.verify(AWS_EXAMPLE, EXAMPLE_NOW);
  const tampered = chunkedBody(EXAMPLE_CHUNK_SIGS);
  tampered[200] = 0x62;
  const e1 = await rejected(drain(new AwsChunkedDecoder({ signing: chunkSigningOf(v) }).decode([tampered])));
  assert.equal(e1.s3Code, 'SignatureDoesNotMatch');
  const wrongLast = chunkedBody([EXAMPLE_CHUNK_SIGS[0]!, EXAMPLE_CHUNK_SIGS[1]!, EXAMPLE_CHUNK_SIGS[0]!]);
  assert.equal((await rejected(drain(new AwsChunkedDecoder({ signing: chunkSigningOf(v) }).decode([wrongLast])))).s3Code, 'SignatureDoesNotMatch');
  // A truncated body is IncompleteBody, not a silent short file.
  const cut = chunkedBody(EXAMPLE_CHUNK_SIGS).subarray(0, 40_000);
  assert.equal((await rejected(drain(new AwsChunkedDecoder({ signing: chunkSigningOf(v) }).decode([cut])))).s3Code, 'IncompleteBody');
});

test('a changed signed header is SignatureDoesNotMatch; a stale date RequestTimeTooSkewed', async () => {
  const e = await rejected(verifier.verify({ ...AWS_EXAMPLE, headers: { ...AWS_EXAMPLE.headers, 'x-amz-storage-class': 'STANDARD' } }, EXAMPLE_NOW));
  assert.equal(e.s3Code, 'SignatureDoesNotMatch');
  assert.equal((await rejected(verifier.verify(AWS_EXAMPLE, EXAMPLE_NOW + 3600_000))).s3Code, 'RequestTimeTooSkewed');
});

test("a presigned GET made by the SDK's signer verifies until it expires", async () => {
  const signer = new SignatureV4({ service: 's3', region: 'eu-west-1', credentials: { accessKeyId: AKID, secretAccessKey: SECRET }, sha256: Sha256, uriEscapePath: false });
  const signedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const req = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: '/s3/acme/a%20b/c.txt', query: { 'x-id': 'GetObject' }, headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    { signingDate: signedAt, expiresIn: 60 },
  );
  const qs = Object.entries(req.query ?? {}).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
  const wire = { method: 'GET', rawUrl: `${req.path}?${qs}`, headers: { host: '127.0.0.1:9000' } };
  const v = await verifier.verify(wire, signedAt.getTime() + 59_000);
  assert.equal(v.presigned, true);
  assert.deepEqual(v.payload, { kind: 'unsigned' });
  const expired = await rejected(verifier.verify(wire, signedAt.getTime() + 61_000));
  assert.equal(expired.s3Code, 'AccessDenied');
  assert.match(expired.message, /expired/);
  const other = await rejected(verifier.verify({ ...wire, rawUrl: wire.rawUrl.replace('c.txt', 'd.txt') }, signedAt.getTime()));
  assert.equal(other.s3Code, 'SignatureDoesNotMatch');
});
