// AWS Signature Version 4 verification for the S3 endpoint, header form
// (Authorization: AWS4-HMAC-SHA256 ...) and presigned query form (X-Amz-*).
//
// No maintained npm package verifies SigV4 on the server side (the candidates
// found are unmaintained one-offs), so the canonical request, string to sign
// and signing key come from the AWS SDK's own signer, @smithy/signature-v4
// (its SignatureV4Base and getSigningKey), and only the comparison is ours:
// what a client's SDK computed is recomputed by the same code. Streaming
// (aws-chunked) chunk signatures are checked in aws-chunked.ts with the key
// and seed signature this module hands back.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { getSigningKey, SignatureV4Base } from '@smithy/signature-v4';
import type { Checksum, HeaderBag, HttpRequest, SourceData } from '@smithy/types';
import type { Principal } from '../core/auth/principal.ts';
import type { S3AccessKeys } from '../core/auth/s3-access-keys.ts';

/** Where secrets come from: S3AccessKeys, or a fixed table in tests. */
export type CredentialLookup = Pick<S3AccessKeys, 'lookup'>;
import { S3Error } from './errors.ts';

/** What the client says about the body; checked as it streams (aws-chunked.ts, checksums.ts). */
export type PayloadMode =
  | { kind: 'unsigned' }
  | { kind: 'sha256'; hex: string }
  /** STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): every chunk signed, chained from the seed signature. */
  | { kind: 'streaming-signed'; trailer: boolean }
  /** STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked, a checksum in the trailer (SDK v3's default for streams). */
  | { kind: 'streaming-unsigned-trailer' };

export interface VerifiedRequest {
  principal: Principal;
  accessKeyId: string;
  /** HMAC key of the request's scope; chunk signatures are made with it. */
  signingKey: Buffer;
  /** `<date>/<region>/s3/aws4_request`. */
  scope: string;
  /** `YYYYMMDDTHHMMSSZ` of the request. */
  longDate: string;
  /** The request's own signature: the first "previous signature" of a chunk chain. */
  seedSignature: string;
  payload: PayloadMode;
  presigned: boolean;
}

export interface SignedRequest {
  method: string;
  /** Path and query exactly as on the wire. */
  rawUrl: string;
  headers: IncomingHttpHeaders;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3 refuses header-signed requests whose x-amz-date is further than this from its clock. */
const MAX_SKEW_MS = 15 * 60_000;
const LONG_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** node:crypto behind the SDK's Checksum interface: a hash, or an HMAC when given a key. */
class NodeSha256 implements Checksum {
  readonly #key: SourceData | undefined;
  #h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(key?: SourceData) {
    this.#key = key;
    this.#h = this.#fresh();
  }
  #fresh() {
    return this.#key === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.#key));
  }
  update(data: Uint8Array): void {
    this.#h.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }
  reset(): void {
    this.#h = this.#fresh();
  }
}

function toBuffer(d: SourceData): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

/** The SDK's canonical-request code, reached through its base class (uriEscapePath off, as for S3). */
class CanonicalRequest extends SignatureV4Base {
  constructor() {
    super({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: '', secretAccessKey: '' }, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  }
  build(request: HttpRequest, headers: HeaderBag, payloadHash: string): string {
    return this.createCanonicalRequest(request, headers, payloadHash);
  }
  stringToSign(longDate: string, scope: string, canonical: string): Promise<string> {
    return this.createStringToSign(longDate, scope, canonical, ALGORITHM);
  }
}
const canonicalRequest = new CanonicalRequest();

interface Presented {
  accessKeyId: string;
  shortDate: string;
  region: string;
  longDate: string;
  signedHeaders: string[];
  signature: string;
  payloadHash: string;
  presigned: boolean;
  expiresS?: number;
}

export class SigV4Verifier {
  readonly #keys: CredentialLookup;
  readonly #maxPresignS: number;

  constructor(keys: CredentialLookup, opts: { maxPresignS: number }) {
    this.#keys = keys;
    this.#maxPresignS = opts.maxPresignS;
  }

  async verify(req: SignedRequest, now = Date.now()): Promise<VerifiedRequest> {
    const { path, query } = splitUrl(req.rawUrl);
    const p = query['X-Amz-Algorithm'] !== undefined ? this.#fromQuery(query, req.headers) : fromHeader(req.headers);
    const signedAt = parseLongDate(p.longDate);
    if (p.presigned) {
      if (signedAt - MAX_SKEW_MS > now) throw new S3Error('AccessDenied', 'Request is not valid yet');
      if (now > signedAt + p.expiresS! * 1000) throw new S3Error('AccessDenied', 'Request has expired');
    } else if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
      throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    }
    const cred = this.#keys.lookup(p.accessKeyId);
    if (!cred) throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');

    const headers: HeaderBag = {};
    for (const name of p.signedHeaders) {
      const v = req.headers[name];
      if (v === undefined) throw new S3Error(p.presigned ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed', `The signed header ${name} is missing`);
      headers[name] = Array.isArray(v) ? v.join(',') : v;
    }
    const scope = `${p.shortDate}/${p.region}/s3/aws4_request`;
    const signingKey = Buffer.from(await getSigningKey(NodeSha256, { accessKeyId: p.accessKeyId, secretAccessKey: cred.secretAccessKey }, p.shortDate, p.region, 's3'));
    const signedQuery = { ...query };
    delete signedQuery['X-Amz-Signature'];
    const host = headerString(req.headers.host) ?? '';
    // The canonical URI is the path as the client encoded it; a client that sent a
    // different encoding than it signed is tried once more with S3's own encoding.
    const candidates = [path];
    const reencoded = s3EncodePath(safeDecode(path));
    if (reencoded !== path) candidates.push(reencoded);
    let match = false;
    for (const candidate of candidates) {
      const request: HttpRequest = { method: req.method, protocol: 'http:', hostname: host, path: candidate, query: signedQuery, headers };
      const sts = await canonicalRequest.stringToSign(p.longDate, scope, canonicalRequest.build(request, headers, p.payloadHash));
      const expected = createHmac('sha256', signingKey).update(sts, 'utf8').digest();
      const given = Buffer.from(p.signature, 'hex');
      if (given.length === expected.length && timingSafeEqual(given, expected)) {
        match = true;
        break;
      }
    }
    if (!match) {
      throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
    }
    return {
      principal: cred.principal,
      accessKeyId: p.accessKeyId,
      signingKey,
      scope,
      longDate: p.longDate,
      seedSignature: p.signature,
      payload: payloadMode(p.payloadHash),
      presigned: p.presigned,
    };
  }

  #fromQuery(q: Record<string, string | string[]>, headers: IncomingHttpHeaders): Presented {
    const one = (name: string): string => {
      const v = q[name];
      if (typeof v !== 'string' || v === '') throw new S3Error('AuthorizationQueryParametersError', `Query-string authentication requires ${name}`);
      return v;
    };
    if (one('X-Amz-Algorithm') !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', `X-Amz-Algorithm must be ${ALGORITHM}`);
    const expires = one('X-Amz-Expires');
    if (!/^\d{1,7}$/.test(expires) || Number(expires) > this.#maxPresignS) {
      throw new S3Error('AuthorizationQueryParametersError', `X-Amz-Expires must be a number of seconds up to ${this.#maxPresignS}`);
    }
    const c = parseCredential(one('X-Amz-Credential'), 'AuthorizationQueryParametersError');
    const longDate = one('X-Amz-Date');
    if (!longDate.startsWith(c.shortDate)) throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Date does not match the credential scope date');
    return {
      ...c,
      longDate,
      signedHeaders: parseSignedHeaders(one('X-Amz-SignedHeaders'), 'AuthorizationQueryParametersError'),
      signature: parseSignature(one('X-Amz-Signature'), 'AuthorizationQueryParametersError'),
      payloadHash: (typeof q['X-Amz-Content-Sha256'] === 'string' ? q['X-Amz-Content-Sha256'] : undefined) ?? headerString(headers['x-amz-content-sha256']) ?? 'UNSIGNED-PAYLOAD',
      presigned: true,
      expiresS: Number(expires),
    };
  }
}

function fromHeader(headers: IncomingHttpHeaders): Presented {
  const auth = headerString(headers.authorization);
  if (auth === undefined) throw new S3Error('AccessDenied', 'Anonymous access is not allowed; sign the request with SigV4');
  if (!auth.startsWith(`${ALGORITHM} `)) {
    throw new S3Error('InvalidRequest', `The authorization mechanism you have provided is not supported. Please use ${ALGORITHM}.`);
  }
  const fields: Record<string, string> = {};
  for (const part of auth.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const need = (name: string): string => {
    const v = fields[name];
    if (!v) throw new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; it lacks ${name}`);
    return v;
  };
  const c = parseCredential(need('Credential'), 'AuthorizationHeaderMalformed');
  const longDate = headerString(headers['x-amz-date']);
  if (longDate === undefined) throw new S3Error('AccessDenied', 'AWS authentication requires a valid x-amz-date header');
  if (!longDate.startsWith(c.shortDate)) throw new S3Error('AuthorizationHeaderMalformed', 'The credential date does not match x-amz-date');
  const payloadHash = headerString(headers['x-amz-content-sha256']);
  if (payloadHash === undefined) throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  return {
    ...c,
    longDate,
    signedHeaders: parseSignedHeaders(need('SignedHeaders'), 'AuthorizationHeaderMalformed'),
    signature: parseSignature(need('Signature'), 'AuthorizationHeaderMalformed'),
    payloadHash,
    presigned: false,
  };
}

type MalformedCode = 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError';

function parseCredential(raw: string, code: MalformedCode): { accessKeyId: string; shortDate: string; region: string } {
  const parts = raw.split('/');
  if (parts.length !== 5 || !/^\d{8}$/.test(parts[1]!) || parts[2] === '' || parts[3] !== 's3' || parts[4] !== 'aws4_request') {
    throw new S3Error(code, 'The credential must be <access key id>/<date>/<region>/s3/aws4_request');
  }
  return { accessKeyId: parts[0]!, shortDate: parts[1]!, region: parts[2]! };
}

function parseSignedHeaders(raw: string, code: MalformedCode): string[] {
  const names = raw.split(';');
  if (names.some((n) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(n)) || !names.includes('host')) {
    throw new S3Error(code, 'SignedHeaders must be lower-case header names separated by ";" and include host');
  }
  return names;
}

function parseSignature(raw: string, code: MalformedCode): string {
  if (!/^[0-9a-f]{64}$/.test(raw)) throw new S3Error(code, 'The signature must be 64 lower-case hex digits');
  return raw;
}

function parseLongDate(raw: string): number {
  const m = LONG_DATE.exec(raw);
  if (!m) throw new S3Error('AccessDenied', 'The request date must be YYYYMMDDTHHMMSSZ');
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

function payloadMode(hash: string): PayloadMode {
  switch (hash) {
    case 'UNSIGNED-PAYLOAD':
      return { kind: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { kind: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { kind: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { kind: 'streaming-unsigned-trailer' };
    default:
      if (!/^[0-9a-f]{64}$/.test(hash)) throw new S3Error('InvalidArgument', `x-amz-content-sha256 ${JSON.stringify(hash.slice(0, 80))} is not a sha256 or a known payload mode`);
      return { kind: 'sha256', hex: hash };
  }
}

/** Path (still %-encoded) and decoded query parameters; a '+' stays a '+' (SigV4 clients encode spaces as %20). */
export function splitUrl(rawUrl: string): { path: string; query: Record<string, string | string[]> } {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query: Record<string, string | string[]> = {};
  if (q !== -1) {
    for (const pair of rawUrl.slice(q + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const k = safeDecode(eq === -1 ? pair : pair.slice(0, eq));
      const v = eq === -1 ? '' : safeDecode(pair.slice(eq + 1));
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
  }
  return { path, query };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error('InvalidArgument', 'The request URL has a malformed %-escape');
  }
}

/** S3's path encoding: every byte but unreserved characters and '/' as %XX. */
function s3EncodePath(decoded: string): string {
  return decoded.split('/').map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export { EMPTY_SHA256 };
