// The whole error catalogue. Every error the service can answer is declared here
// once, with a stable code (what clients match on), an HTTP status and a message.
// README's error table lists every code; test/errors.test.ts keeps the two in step.

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const errorCatalogue = {
  // 400
  INVALID_INPUT: { status: 400, message: 'The request is not valid' },
  MALFORMED_MULTIPART: { status: 400, message: 'The multipart body is malformed' },
  NO_FILE: { status: 400, message: 'The request contains no file' },
  INVALID_DIGEST: { status: 400, message: 'The digest header is malformed' },
  INVALID_CURSOR: { status: 400, message: 'The listing cursor is not valid' },
  INVALID_PATH: { status: 400, message: 'The file path is not valid' },
  INVALID_CONTENT_LENGTH: { status: 400, message: 'The Content-Length header is not valid' },
  MALFORMED_REQUEST: { status: 400, message: 'The HTTP request is malformed' },
  // 404/405
  FILE_NOT_FOUND: { status: 404, message: 'No such file' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  // 408
  UPLOAD_TIMEOUT: { status: 408, message: 'The upload stalled and was aborted' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive' },
  UPLOAD_DEADLINE_EXCEEDED: { status: 408, message: 'The upload request ran past its total deadline and was aborted' },
  // 411/413
  LENGTH_REQUIRED: { status: 411, message: 'A Content-Length header is required' },
  FILE_TOO_LARGE: { status: 413, message: 'The file exceeds the size limit' },
  REQUEST_TOO_LARGE: { status: 413, message: 'The request body exceeds the size limit' },
  TOO_MANY_FILES: { status: 413, message: 'The request has too many files' },
  TOO_MANY_FIELDS: { status: 413, message: 'The request has too many fields or parts' },
  FIELD_TOO_LARGE: { status: 413, message: 'A form field exceeds the size limit' },
  // 431
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  // 415/416
  UNSUPPORTED_CONTENT_TYPE: { status: 415, message: 'The request Content-Type is not supported by this route' },
  TYPE_NOT_ALLOWED: { status: 415, message: 'The file type is not allowed' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested range is not satisfiable' },
  // 422
  TYPE_MISMATCH: { status: 422, message: 'The declared type contradicts the file contents' },
  CHECKSUM_MISMATCH: { status: 422, message: 'The file does not match the digest the client sent' },
  // 499: the client went away; logged and counted, never seen by the client.
  CLIENT_ABORTED: { status: 499, message: 'The client closed the connection before the upload finished' },
  // 409: a conditional write (storage.ts ConditionalWrites) found the object changed or gone.
  WRITE_CONFLICT: { status: 409, message: 'The object changed while it was being written; retry' },
  // 500: a bug. Everything a client can cause has a 4xx code above.
  INTERNAL: { status: 500, message: 'Internal error' },
  // 503
  STORAGE_UNAVAILABLE: { status: 503, message: 'Storage is unavailable; retry later' },
  BUSY: { status: 503, message: 'The service is at capacity; retry later' },
  SHUTTING_DOWN: { status: 503, message: 'The service is shutting down; retry on another instance' },
  // --- processing jobs: UNKNOWN_JOB and VARIANT_NOT_FOUND are answers;
  // the others are recorded in manifests as a failed job's reason, never answered.
  UNKNOWN_JOB: { status: 400, message: 'The process parameter names an unknown job' },
  VARIANT_NOT_FOUND: { status: 404, message: 'No such variant of this file (yet)' },
  IMAGE_INVALID: { status: 422, message: 'The image is corrupt, truncated or in an unsupported format' },
  IMAGE_TOO_LARGE: { status: 422, message: 'The image exceeds the decoded pixel limit' },
  JOB_TIMEOUT: { status: 503, message: 'The job exceeded its time limit' },
  // --- security: docs/security.md ---
  AUTH_REQUIRED: { status: 401, message: 'Authentication is required' },
  INVALID_CREDENTIALS: { status: 401, message: 'The token or API key is not valid' },
  TOKEN_REVOKED: { status: 401, message: 'The token or API key has been revoked' },
  INSUFFICIENT_SCOPE: { status: 403, message: 'The token lacks the scope this route needs' },
  LINK_INVALID: { status: 403, message: 'The link is not valid' },
  LINK_EXPIRED: { status: 403, message: 'The link has expired' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later' },
  TOO_MANY_UPLOADS: { status: 429, message: 'Too many uploads in progress for this tenant; retry later' },
  QUOTA_EXCEEDED: { status: 507, message: 'The tenant\'s storage quota is used up' },
  CHECKSUM_SPOOL_FULL: { status: 507, message: 'The temp space for verifying checksummed uploads is full; retry later or send smaller PATCHes' },
  AUTH_UNAVAILABLE: { status: 503, message: 'The token issuer\'s keys cannot be fetched; retry later' },

  // --- resumable uploads (tus, docs/tus.md) ---
  CHECKSUM_ALGORITHM_UNSUPPORTED: { status: 400, message: 'The Upload-Checksum algorithm is not supported (use sha1, sha256 or md5)' },
  // 460 is the tus checksum extension's status; the PATCH's bytes were discarded.
  UPLOAD_CHECKSUM_MISMATCH: { status: 460, message: 'The PATCH body does not match its Upload-Checksum' },
  // tus's own refusals (tus/protocol-errors.ts maps each of @tus/server's answers to one of these).
  TUS_VERSION_REQUIRED: { status: 412, message: 'Tus-Resumable: 1.0.0 is required' },
  TUS_HEADER_INVALID: { status: 400, message: 'A tus header is malformed' },
  TUS_CONTENT_TYPE_REQUIRED: { status: 403, message: 'A PATCH needs Content-Type: application/offset+octet-stream' },
  TUS_EXTENSION_UNSUPPORTED: { status: 501, message: 'This tus extension is not supported (concatenation: disable parallel uploads in the client)' },
  UPLOAD_NOT_FOUND: { status: 404, message: 'No such upload' },
  UPLOAD_EXPIRED: { status: 410, message: 'The upload has expired or was removed; start a new one' },
  UPLOAD_OFFSET_REQUIRED: { status: 403, message: 'A PATCH needs an Upload-Offset header' },
  UPLOAD_OFFSET_MISMATCH: { status: 409, message: 'Upload-Offset is not the upload\'s current offset; HEAD the upload and resume from its offset' },
  UPLOAD_LENGTH_INVALID: { status: 400, message: 'Upload-Length (or Upload-Defer-Length: 1) is required, and once set cannot change' },
  UPLOAD_LENGTH_EXCEEDED: { status: 413, message: 'The bytes would go past the upload\'s Upload-Length' },
  UPLOAD_METADATA_INVALID: { status: 400, message: 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys' },
  UPLOAD_SUPERSEDED: { status: 400, message: 'A newer request for this upload took it over; HEAD the upload and resume' },
  UPLOAD_ALREADY_COMPLETE: { status: 400, message: 'A completed upload cannot be terminated' },
  UPLOAD_LOCKED: { status: 423, message: 'Another request is writing this upload; retry' },

  // --- resumable uploads (IETF draft, docs/resumable.md); answered as RFC 9457 problem details ---
  UPLOAD_INTEROP_UNSUPPORTED: { status: 400, message: 'The Upload-Draft-Interop-Version is not supported' },
  UPLOAD_LENGTH_INCONSISTENT: { status: 400, message: 'The upload length values disagree (or more bytes than the length arrived)' },

  // --- beyond one machine: shared limits in Redis ---
  LIMITS_UNAVAILABLE: { status: 503, message: 'The shared limits store is unreachable; retry later' },
  /** /ready only: a node configured with SLUICE_REDIS_URL cannot reach it. */
  REDIS_UNAVAILABLE: { status: 503, message: 'Redis is unreachable' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** Seconds a client should wait before retrying a 503. */
export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * The one error type the service throws on purpose. Callers match on `code`,
 * never on class: class identity does not survive worker threads or bundling.
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, such as Retry-After or Content-Range. */
  readonly headers: Readonly<Record<string, string>>;
  /** Safe, client-facing details (never internals such as paths or bucket names). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: ErrorCode,
    opts: { message?: string; cause?: unknown; headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    const spec: ErrorSpec = errorCatalogue[code];
    super(opts.message ?? spec.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.status = spec.status;
    const retry: Record<string, string> = spec.status === 503 ? { 'retry-after': String(DEFAULT_RETRY_AFTER_S) } : {};
    this.headers = { ...retry, ...opts.headers };
    this.details = opts.details;
  }
}

export function isSluiceError(err: unknown): err is SluiceError {
  return err instanceof Error && (err as Partial<SluiceError>).name === 'SluiceError' && typeof (err as Partial<SluiceError>).code === 'string';
}

/** Plain data for crossing a thread or process boundary. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
}

export function toErrorData(err: unknown): ErrorData {
  if (isSluiceError(err)) return { code: err.code, message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}
