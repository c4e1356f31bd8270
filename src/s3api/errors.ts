// S3's error codes, as S3 clients parse them from an XML <Error> document
// (xml.ts renders it). S3 has its own catalogue, which clients match on, so the
// endpoint answers S3 codes; a refusal that comes from sluice's own pipeline
// (src/errors.ts) is mapped here, and keeps sluice's code in the message
// ("TYPE_NOT_ALLOWED: ...") and in a <SluiceCode> element, so a user sees why.

import { isSluiceError, type ErrorCode } from '../errors.ts';

/** The S3 codes this endpoint answers, with their HTTP status (as AWS S3 answers them). */
export const S3_ERRORS = {
  AccessDenied: 403,
  InvalidAccessKeyId: 403,
  SignatureDoesNotMatch: 403,
  RequestTimeTooSkewed: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  MissingSecurityHeader: 400,
  InvalidRequest: 400,
  InvalidArgument: 400,
  InvalidDigest: 400,
  BadDigest: 400,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  MalformedXML: 400,
  RequestTimeout: 400,
  KeyTooLongError: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  MethodNotAllowed: 405,
  InvalidRange: 416,
  InternalError: 500,
  NotImplemented: 501,
  SlowDown: 503,
  ServiceUnavailable: 503,
} as const;
export type S3Code = keyof typeof S3_ERRORS;

export class S3Error extends Error {
  readonly s3Code: S3Code;
  readonly status: number;
  /** The sluice code behind it, when the refusal came from the ingest pipeline. */
  readonly sluiceCode: ErrorCode | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: S3Code, message: string, opts: { status?: number; sluiceCode?: ErrorCode; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'S3Error';
    this.s3Code = code;
    this.status = opts.status ?? S3_ERRORS[code];
    this.sluiceCode = opts.sluiceCode;
    this.headers = opts.headers ?? {};
  }
}

/** sluice code → S3 code; the status stays S3's unless noted (type refusals keep 415/422, which no S3 code has). */
const FROM_SLUICE: Partial<Record<ErrorCode, { code: S3Code; keepStatus?: boolean }>> = {
  INVALID_INPUT: { code: 'InvalidArgument' },
  INVALID_DIGEST: { code: 'InvalidDigest' },
  INVALID_PATH: { code: 'InvalidArgument' },
  INVALID_CONTENT_LENGTH: { code: 'InvalidArgument' },
  MALFORMED_REQUEST: { code: 'IncompleteBody' },
  FILE_NOT_FOUND: { code: 'NoSuchKey' },
  UPLOAD_TIMEOUT: { code: 'RequestTimeout' },
  LENGTH_REQUIRED: { code: 'MissingSecurityHeader', keepStatus: true },
  FILE_TOO_LARGE: { code: 'EntityTooLarge' },
  REQUEST_TOO_LARGE: { code: 'EntityTooLarge' },
  TYPE_NOT_ALLOWED: { code: 'InvalidRequest', keepStatus: true },
  TYPE_MISMATCH: { code: 'InvalidRequest', keepStatus: true },
  CHECKSUM_MISMATCH: { code: 'BadDigest' },
  RANGE_NOT_SATISFIABLE: { code: 'InvalidRange' },
  CLIENT_ABORTED: { code: 'IncompleteBody' },
  WRITE_CONFLICT: { code: 'SlowDown' },
  STORAGE_UNAVAILABLE: { code: 'ServiceUnavailable' },
  BUSY: { code: 'SlowDown' },
  SHUTTING_DOWN: { code: 'ServiceUnavailable' },
  AUTH_REQUIRED: { code: 'AccessDenied' },
  INVALID_CREDENTIALS: { code: 'InvalidAccessKeyId' },
  TOKEN_REVOKED: { code: 'AccessDenied' },
  INSUFFICIENT_SCOPE: { code: 'AccessDenied' },
  RATE_LIMITED: { code: 'SlowDown' },
  TOO_MANY_UPLOADS: { code: 'SlowDown' },
  LIMITS_UNAVAILABLE: { code: 'ServiceUnavailable' },
  QUOTA_EXCEEDED: { code: 'AccessDenied' },
};

export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  if (isSluiceError(err)) {
    const m = FROM_SLUICE[err.code] ?? { code: 'InternalError' as const };
    return new S3Error(m.code, `${err.code}: ${err.message}`, {
      sluiceCode: err.code,
      ...(m.keepStatus ? { status: err.status } : {}),
      headers: { ...err.headers },
      cause: err,
    });
  }
  return new S3Error('InternalError', 'We encountered an internal error. Please try again.', { cause: err });
}
