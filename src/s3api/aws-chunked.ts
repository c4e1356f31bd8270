// Decodes an `aws-chunked` request body (Content-Encoding: aws-chunked), the
// framing S3 clients use for streaming uploads:
//
//   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
//   [<trailer name>:<value>\r\n ...][x-amz-trailer-signature:<sig>\r\n]\r\n
//
// With STREAMING-AWS4-HMAC-SHA256-PAYLOAD every chunk's signature chains from
// the previous one (the request's signature first) over the chunk's sha256,
// and is checked as soon as the chunk has passed; the data is yielded before,
// so a bad signature fails the upload's pipeline, which commits nothing.
// With STREAMING-UNSIGNED-PAYLOAD-TRAILER nothing is signed per chunk; the
// trailer carries the object's checksum (checked in checksums.ts).
//
// Memory: one chunk header line (at most MAX_LINE bytes) and the trailers (at
// most MAX_TRAILER bytes); data is passed on as slices of the incoming buffers.

import { createHash, createHmac, timingSafeEqual, type Hash } from 'node:crypto';
import { S3Error } from './errors.ts';
import { EMPTY_SHA256, type VerifiedRequest } from './sigv4.ts';

const MAX_LINE = 4096;
const MAX_TRAILER = 16 * 1024;

export interface ChunkSigning {
  signingKey: Buffer;
  scope: string;
  longDate: string;
  seedSignature: string;
}

export function chunkSigningOf(v: VerifiedRequest): ChunkSigning | undefined {
  if (v.payload.kind !== 'streaming-signed') return undefined;
  return { signingKey: v.signingKey, scope: v.scope, longDate: v.longDate, seedSignature: v.seedSignature };
}

export class AwsChunkedDecoder {
  readonly #signing: ChunkSigning | undefined;
  readonly #signedTrailer: boolean;
  readonly #decodedLength: number | undefined;
  /** Trailer headers (lower-case names), complete once decode() has returned. */
  readonly trailers = new Map<string, string>();

  constructor(opts: { signing?: ChunkSigning | undefined; signedTrailer?: boolean; decodedLength?: number | undefined }) {
    this.#signing = opts.signing;
    this.#signedTrailer = opts.signedTrailer ?? false;
    this.#decodedLength = opts.decodedLength;
  }

  async *decode(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let prevSig = this.#signing?.seedSignature ?? '';
    let line = Buffer.alloc(0);
    let state: 'header' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'header';
    let remaining = 0;
    let chunkSig = '';
    let chunkHash: Hash | undefined;
    let total = 0;
    let trailerBytes = 0;

    const finishChunk = (hash: string) => {
      if (!this.#signing) return;
      const sts = ['AWS4-HMAC-SHA256-PAYLOAD', this.#signing.longDate, this.#signing.scope, prevSig, EMPTY_SHA256, hash].join('\n');
      checkSignature(this.#signing.signingKey, sts, chunkSig);
      prevSig = chunkSig;
    };

    for await (const piece of source) {
      let buf = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      while (buf.length > 0) {
        if (state === 'data') {
          const take = Math.min(remaining, buf.length);
          const data = buf.subarray(0, take);
          chunkHash?.update(data);
          remaining -= take;
          total += take;
          buf = buf.subarray(take);
          yield data;
          if (remaining === 0) state = 'data-crlf';
          continue;
        }
        if (state === 'done') throw new S3Error('IncompleteBody', 'The aws-chunked body has bytes after its end');
        // Line-oriented states: gather up to CRLF.
        const nl = buf.indexOf(0x0a);
        const part = nl === -1 ? buf : buf.subarray(0, nl + 1);
        buf = nl === -1 ? Buffer.alloc(0) : buf.subarray(nl + 1);
        line = line.length === 0 ? Buffer.from(part) : Buffer.concat([line, part]);
        if (state === 'trailer') {
          trailerBytes += part.length;
          if (trailerBytes > MAX_TRAILER) throw new S3Error('InvalidRequest', 'The aws-chunked trailer is too large');
        } else if (line.length > MAX_LINE) {
          throw new S3Error('InvalidRequest', 'An aws-chunked chunk header is too long');
        }
        if (nl === -1) continue;
        const text = line.toString('latin1').replace(/\r?\n$/, '');
        line = Buffer.alloc(0);
        if (state === 'data-crlf') {
          if (text !== '') throw new S3Error('IncompleteBody', 'An aws-chunked chunk is longer than its declared size');
          finishChunk(chunkHash ? chunkHash.digest('hex') : '');
          state = 'header';
          continue;
        }
        if (state === 'header') {
          const m = /^([0-9a-fA-F]{1,16})((?:;[^;]*)*)$/.exec(text);
          if (!m) throw new S3Error('InvalidRequest', 'A malformed aws-chunked chunk header');
          const size = parseInt(m[1]!, 16);
          const sig = /;chunk-signature=([0-9a-f]{64})/.exec(m[2] ?? '');
          if (this.#signing) {
            if (!sig) throw new S3Error('SignatureDoesNotMatch', 'A chunk of a signed aws-chunked body has no chunk-signature');
            chunkSig = sig[1]!;
          }
          if (size > 0) {
            remaining = size;
            chunkHash = this.#signing ? createHash('sha256') : undefined;
            state = 'data';
          } else {
            finishChunk(EMPTY_SHA256);
            state = 'trailer';
          }
          continue;
        }
        // Trailer lines until an empty line.
        if (text === '') {
          this.#checkTrailer(prevSig);
          state = 'done';
          continue;
        }
        const colon = text.indexOf(':');
        if (colon <= 0) throw new S3Error('InvalidRequest', 'A malformed aws-chunked trailer line');
        this.trailers.set(text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim());
      }
    }
    // Some clients end right after the final chunk's trailers without the closing empty line.
    if (state === 'trailer' && line.length === 0) {
      this.#checkTrailer(prevSig);
      state = 'done';
    }
    if (state !== 'done') throw new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk');
    if (this.#decodedLength !== undefined && total !== this.#decodedLength) {
      throw new S3Error('IncompleteBody', `The body decoded to ${total} bytes; x-amz-decoded-content-length says ${this.#decodedLength}`);
    }
  }

  #checkTrailer(prevSig: string): void {
    if (!this.#signing || !this.#signedTrailer) return;
    const sig = this.trailers.get('x-amz-trailer-signature');
    if (!sig) throw new S3Error('SignatureDoesNotMatch', 'The signed trailer has no x-amz-trailer-signature');
    const canonical = [...this.trailers].filter(([k]) => k !== 'x-amz-trailer-signature').map(([k, v]) => `${k}:${v}\n`).join('');
    const sts = ['AWS4-HMAC-SHA256-TRAILER', this.#signing.longDate, this.#signing.scope, prevSig, createHash('sha256').update(canonical).digest('hex')].join('\n');
    checkSignature(this.#signing.signingKey, sts, sig);
    this.trailers.delete('x-amz-trailer-signature');
  }
}

function checkSignature(key: Buffer, stringToSign: string, given: string): void {
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();
  const g = Buffer.from(given, 'hex');
  if (g.length !== expected.length || !timingSafeEqual(g, expected)) {
    throw new S3Error('SignatureDoesNotMatch', 'A chunk signature of the aws-chunked body does not match');
  }
}
