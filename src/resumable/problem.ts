// RFC 9457 problem details for answers to the resumable-upload draft. The
// draft registers three problem types (mismatching offset, completed upload,
// inconsistent length); every other refusal is one of sluice's coded errors,
// rendered with `type: about:blank` (the status says it all) and the stable
// `code` as an extension member, so a client matches on the same codes as
// everywhere else in the API.

import { isSluiceError, SluiceError, type ErrorCode } from '../errors.ts';

export const PROBLEM_JSON = 'application/problem+json';

const IANA = 'https://iana.org/assignments/http-problem-types#';

/** Our codes that have a problem type of the draft's own. */
const DRAFT_TYPES: Partial<Record<ErrorCode, string>> = {
  UPLOAD_OFFSET_MISMATCH: `${IANA}mismatching-upload-offset`,
  UPLOAD_ALREADY_COMPLETE: `${IANA}completed-upload`,
  UPLOAD_LENGTH_INCONSISTENT: `${IANA}inconsistent-upload-length`,
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  /** sluice's stable error code (src/errors.ts). */
  code: ErrorCode;
  requestId?: string;
  [member: string]: unknown;
}

export interface RenderedProblem {
  status: number;
  headers: Record<string, string>;
  body: Problem;
}

/** Any thrown value as a problem; anything not ours is INTERNAL (and its message is not shown). */
export function toProblem(err: unknown, requestId: string | undefined): RenderedProblem {
  const e = isSluiceError(err) ? err : new SluiceError('INTERNAL');
  const body: Problem = {
    type: DRAFT_TYPES[e.code] ?? 'about:blank',
    title: e.code,
    status: e.status,
    detail: e.message,
    code: e.code,
    ...(requestId ? { requestId } : {}),
    // The draft's extension members (expected-offset, provided-offset) travel as details.
    ...(e.details ?? {}),
  };
  return { status: e.status, headers: { ...e.headers, 'content-type': PROBLEM_JSON }, body };
}
