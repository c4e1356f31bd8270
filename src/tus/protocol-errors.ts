// tus's own refusals as sluice's coded errors. @tus/server answers its
// protocol errors as text ({ status_code, body } objects from @tus/utils'
// ERRORS, or a few statuses it writes itself); every one of them gets a code
// here so the route renders it in the service's JSON shape like any other
// error. Statuses stay what tus clients expect (409 and 423 are retried by
// tus-js-client and Uppy; 460 is the checksum extension's), except the lock
// timeout: @tus/server answers it 500, which here means a bug, so it is 423.

import { ERRORS } from '@tus/utils';
import { SluiceError, type ErrorCode } from '../errors.ts';

type TusErrorName = keyof typeof ERRORS;

/** Each of @tus/server's ERRORS, by name, to our code. */
export const TUS_ERROR_CODES: Readonly<Record<TusErrorName, ErrorCode>> = {
  MISSING_OFFSET: 'UPLOAD_OFFSET_REQUIRED',
  ABORTED: 'UPLOAD_SUPERSEDED',
  INVALID_TERMINATION: 'UPLOAD_ALREADY_COMPLETE',
  ERR_LOCK_TIMEOUT: 'UPLOAD_LOCKED',
  INVALID_CONTENT_TYPE: 'TUS_CONTENT_TYPE_REQUIRED',
  FILE_NOT_FOUND: 'UPLOAD_NOT_FOUND',
  INVALID_OFFSET: 'UPLOAD_OFFSET_MISMATCH',
  FILE_NO_LONGER_EXISTS: 'UPLOAD_EXPIRED',
  ERR_SIZE_EXCEEDED: 'UPLOAD_LENGTH_EXCEEDED',
  ERR_MAX_SIZE_EXCEEDED: 'FILE_TOO_LARGE',
  INVALID_LENGTH: 'UPLOAD_LENGTH_INVALID',
  INVALID_METADATA: 'UPLOAD_METADATA_INVALID',
  UNKNOWN_ERROR: 'INTERNAL',
  // The fs store wraps every failed write in this; ours (type, timeout) are unwrapped in store.ts first.
  FILE_WRITE_ERROR: 'STORAGE_UNAVAILABLE',
  UNSUPPORTED_CONCATENATION_EXTENSION: 'TUS_EXTENSION_UNSUPPORTED',
  UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION: 'TUS_EXTENSION_UNSUPPORTED',
  UNSUPPORTED_EXPIRATION_EXTENSION: 'TUS_EXTENSION_UNSUPPORTED',
};

interface TusError {
  status_code: number;
  body: string;
}

function isTusError(err: unknown): err is TusError {
  const e = err as Partial<TusError> | null;
  return typeof e === 'object' && e !== null && !(e instanceof Error) && typeof e.status_code === 'number' && typeof e.body === 'string';
}

const byBody = new Map<string, TusErrorName>(Object.entries(ERRORS).map(([name, e]) => [`${e.status_code} ${e.body}`, name as TusErrorName]));

/** One of @tus/server's ERRORS (thrown by it, its stores or its lockers) as our error; undefined for anything else. */
export function fromTusError(err: unknown): SluiceError | undefined {
  if (!isTusError(err)) return undefined;
  return fromTusAnswer(err.status_code, err.body);
}

/**
 * An error answer of @tus/server (status and text body) as our error: its
 * ERRORS, and the statuses it writes itself (412 without Tus-Resumable, 400 on
 * a malformed tus header, 404 for a method it has no handler for).
 */
export function fromTusAnswer(status: number, body: string): SluiceError {
  const name = byBody.get(`${status} ${body}`);
  if (name) return new SluiceError(TUS_ERROR_CODES[name], { cause: { status, body } });
  if (status === 412) return new SluiceError('TUS_VERSION_REQUIRED');
  const invalid = status === 400 ? /^Invalid (.+)\n?$/.exec(body) : null;
  if (invalid) return new SluiceError('TUS_HEADER_INVALID', { details: { headers: invalid[1]!.split(' ') } });
  if (status === 404) return new SluiceError('ROUTE_NOT_FOUND');
  // Not an answer this version of @tus/server gives: keep its status class, never its text.
  return new SluiceError(status >= 500 ? 'INTERNAL' : 'INVALID_INPUT', { cause: { status, body } });
}
