// A file's relative path (`photos/2024/a.jpg`): client input that the CLI
// later turns back into a local path under the user's output directory, so
// it is validated, not repaired: a path that could escape that directory or
// mean different things on different systems is refused with INVALID_PATH.
//
// Rules: '/'-separated segments, none empty, '.' or '..'; no leading '/', no
// drive letter ('C:'), no backslash (a separator on Windows); no control or
// bidi characters; NFC-normalised (macOS hands out NFD names: the same name
// must give the same path); at most MAX_PATH_BYTES in UTF-8, MAX_SEGMENT_BYTES
// per segment and MAX_PATH_SEGMENTS deep.

import { SluiceError } from '../errors.ts';

export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_SEGMENTS = 64;

// C0/C1 controls, DEL, and bidi embedding/override/isolate marks (as in names.ts).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
const DRIVE = /^[A-Za-z]:/;

/** Why a path is refused, or undefined when it is fine. `raw` must already be NFC (see normalizePath). */
export function pathProblem(raw: string, opts: { prefix?: boolean } = {}): string | undefined {
  if (raw === '') return 'is empty';
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  if (UNSAFE.test(raw)) return 'contains a control or bidi character';
  if (raw.includes('\\')) return 'contains a backslash (use "/" between folders)';
  if (raw.startsWith('/') || DRIVE.test(raw)) return 'is absolute (give a path relative to the upload root)';
  const segments = raw.split('/');
  // A listing prefix may end with "/" (everything inside a folder) or mid-segment.
  if (opts.prefix && segments.at(-1) === '') segments.pop();
  if (segments.length > MAX_PATH_SEGMENTS) return `has more than ${MAX_PATH_SEGMENTS} segments`;
  for (const s of segments) {
    if (s === '') return 'has an empty segment ("//" or a trailing "/")';
    if (s === '.' || s === '..') return `has a "${s}" segment`;
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

export function normalizePath(raw: string): string {
  return raw.normalize('NFC');
}

/** The NFC form of a client's path (or listing prefix); INVALID_PATH (400) naming the rule it breaks. */
export function parsePath(raw: string, opts: { prefix?: boolean } = {}): string {
  const p = normalizePath(raw);
  const problem = pathProblem(p, opts);
  if (problem) throw new SluiceError('INVALID_PATH', { message: `The ${opts.prefix ? 'prefix' : 'path'} ${problem}` });
  return p;
}
