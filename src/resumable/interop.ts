// Which dialect of the IETF resumable-upload draft a request speaks, and the
// header fields that differ between the drafts clients shipped. The draft
// numbers its wire versions with `Upload-Draft-Interop-Version`; a version was
// bumped only when the wire format changed (the draft's change log):
//
//   3  draft-ietf-httpbis-resumable-upload-01   Upload-Incomplete: ?1/?0 (iOS 17, macOS 14)
//   4  -02                                      Upload-Complete replaces Upload-Incomplete
//   5  -03                                      104 progress interim responses
//   6  -04, -05                                 PATCH must be application/partial-upload,
//                                               Upload-Limit (its lifetime key is `expires`), Upload-Length
//   7  -06 to -08                               `expires` renamed `max-age` (iOS 18 sends 6; later OSes 7)
//   8  -09 to -15 (latest)                      OPTIONS answers Accept-Patch; otherwise as 7
//
// A request without the version field but with Upload-Complete is taken as
// the latest (what a client of the final RFC sends). Anything above 8 is
// refused rather than guessed at. Nothing here reads a request object: plain
// header records in, plain values out.

import { parseItem, serializeDictionary } from 'structured-headers';
import { SluiceError } from '../errors.ts';

export const INTEROP_VERSIONS = [3, 4, 5, 6, 7, 8] as const;
export type InteropVersion = (typeof INTEROP_VERSIONS)[number];
export const LATEST_INTEROP: InteropVersion = 8;

/** The media type of an append's body (draft §"Media Type"). */
export const PARTIAL_UPLOAD = 'application/partial-upload';

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * True when the request belongs to the draft rather than tus 1.0: tus always
 * sends Tus-Resumable (except for OPTIONS); the draft never does. A HEAD or
 * DELETE with neither protocol's fields is the draft's (its offset retrieval
 * and cancellation carry no field of their own), where tus would refuse it.
 */
export function isDraftRequest(method: string, headers: Headers): boolean {
  if (headers['tus-resumable'] !== undefined) return false;
  if (headers['upload-draft-interop-version'] !== undefined) return true;
  if (headers['upload-complete'] !== undefined || headers['upload-incomplete'] !== undefined) return true;
  return method === 'HEAD' || method === 'DELETE';
}

export function interopVersion(headers: Headers): InteropVersion {
  const raw = one(headers, 'upload-draft-interop-version');
  if (raw === undefined) return LATEST_INTEROP;
  const n = Number(raw.trim());
  if (!(INTEROP_VERSIONS as readonly number[]).includes(n)) {
    throw new SluiceError('UPLOAD_INTEROP_UNSUPPORTED', {
      message: `Upload-Draft-Interop-Version ${raw} is not supported (supported: ${INTEROP_VERSIONS.join(', ')})`,
      details: { supported: [...INTEROP_VERSIONS] },
    });
  }
  return n as InteropVersion;
}

/** A structured-field Item of the expected bare type, or undefined (the draft: other values make the field ignored). */
function item<T extends 'boolean' | 'number'>(headers: Headers, name: string, type: T): (T extends 'boolean' ? boolean : number) | undefined {
  const raw = one(headers, name);
  if (raw === undefined) return undefined;
  try {
    const [value] = parseItem(raw);
    if (typeof value !== type) return undefined;
    if (type === 'number' && !(Number.isSafeInteger(value) && (value as number) >= 0)) return undefined;
    return value as T extends 'boolean' ? boolean : number;
  } catch {
    return undefined;
  }
}

/**
 * Whether this request completes the upload: `Upload-Complete` from version 4
 * on, the inverse of `Upload-Incomplete` in version 3. Undefined when absent
 * or not a structured Boolean.
 */
export function requestComplete(headers: Headers, v: InteropVersion): boolean | undefined {
  if (v === 3) {
    const incomplete = item(headers, 'upload-incomplete', 'boolean');
    return incomplete === undefined ? undefined : !incomplete;
  }
  return item(headers, 'upload-complete', 'boolean');
}

export function uploadOffset(headers: Headers): number | undefined {
  return item(headers, 'upload-offset', 'number');
}

export function uploadLength(headers: Headers): number | undefined {
  return item(headers, 'upload-length', 'number');
}

/** Content-Length as a number, when present and valid. */
export function contentLength(headers: Headers): number | undefined {
  const raw = one(headers, 'content-length');
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return undefined;
  return Number(raw);
}

/** The completeness field in this version's spelling. */
export function completeHeader(v: InteropVersion, complete: boolean): Record<string, string> {
  return v === 3 ? { 'upload-incomplete': complete ? '?0' : '?1' } : { 'upload-complete': complete ? '?1' : '?0' };
}

/** Headers every draft answer carries: the version it was answered in. */
export function versionHeader(v: InteropVersion, headers: Headers): Record<string, string> {
  // Echoed only to a client that named one: an RFC client never sends it.
  return headers['upload-draft-interop-version'] !== undefined ? { 'upload-draft-interop-version': String(v) } : {};
}

export interface UploadLimits {
  maxSize: number;
  /** Seconds the upload resource stays (undefined: not known for this answer). */
  maxAgeS?: number | undefined;
}

/** `Upload-Limit` (a Dictionary); version 6 named the lifetime `expires`; versions 3–5 had no such field. */
export function uploadLimitHeader(v: InteropVersion, limits: UploadLimits): Record<string, string> {
  if (v < 6) return {};
  const dict: Record<string, number> = { 'max-size': limits.maxSize };
  if (limits.maxAgeS !== undefined) dict[v === 6 ? 'expires' : 'max-age'] = Math.max(0, Math.floor(limits.maxAgeS));
  return { 'upload-limit': serializeDictionary(dict) };
}

/** Whether a PATCH's Content-Type is acceptable for an append in this version. */
export function isAppendContentType(v: InteropVersion, contentType: string | undefined): boolean {
  if (v < 6) return true; // -01 to -03 named no media type for appends
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === PARTIAL_UPLOAD;
}
