// The bytes of an S3 upload request (PutObject, UploadPart), as the ingest
// pipeline should see them: aws-chunked framing removed and its chunk
// signatures checked, then every checksum the client sent verified. Also what
// the client declared: the decoded length and the sha256 it signed, if any.

import type { FastifyRequest } from 'fastify';
import { AwsChunkedDecoder, chunkSigningOf } from './aws-chunked.ts';
import { checksumStage } from './checksums.ts';
import { SluiceError } from '../errors.ts';
import { S3Error } from './errors.ts';
import type { VerifiedRequest } from './sigv4.ts';

export interface UploadBody {
  source: AsyncIterable<Uint8Array>;
  /** The object's length when declared (x-amz-decoded-content-length or Content-Length). */
  declaredSize: number | undefined;
  /** The sha256 a signed payload commits to (x-amz-content-sha256), for the pipeline's digest stage. */
  expectedSha256: Buffer | undefined;
}

export function uploadBody(request: FastifyRequest, verified: VerifiedRequest, maxBytes: number): UploadBody {
  const h = request.headers;
  const payload = verified.payload;
  const chunked = payload.kind === 'streaming-signed' || payload.kind === 'streaming-unsigned-trailer' || /\baws-chunked\b/i.test(String(h['content-encoding'] ?? ''));
  const raw = request.raw.iterator({ destroyOnReturn: false });
  const decodedHeader = h['x-amz-decoded-content-length'];
  let declaredSize: number | undefined;
  if (decodedHeader !== undefined) {
    if (typeof decodedHeader !== 'string' || !/^\d{1,16}$/.test(decodedHeader)) throw new S3Error('InvalidArgument', 'x-amz-decoded-content-length is not a number');
    declaredSize = Number(decodedHeader);
  } else if (!chunked && typeof h['content-length'] === 'string' && /^\d{1,16}$/.test(h['content-length'])) {
    declaredSize = Number(h['content-length']);
  }
  // An aws-chunked Content-Length counts the framing too: the limit applies to the decoded length, checked here before any byte is read.
  if (declaredSize !== undefined && declaredSize > maxBytes) throw new SluiceError('FILE_TOO_LARGE', { details: { limitBytes: maxBytes } });
  if (chunked && declaredSize === undefined) throw new S3Error('MissingSecurityHeader', 'Missing required header for this request: x-amz-decoded-content-length', { status: 411 });
  let source: AsyncIterable<Uint8Array> = raw;
  let trailers: ReadonlyMap<string, string> | undefined;
  if (chunked) {
    const decoder = new AwsChunkedDecoder({
      signing: chunkSigningOf(verified),
      signedTrailer: payload.kind === 'streaming-signed' && payload.trailer,
      decodedLength: declaredSize,
    });
    trailers = decoder.trailers;
    source = decoder.decode(raw);
  }
  source = checksumStage(h, trailers)(source);
  return { source, declaredSize, expectedSha256: payload.kind === 'sha256' ? Buffer.from(payload.hex, 'hex') : undefined };
}
