// What a file *is*, decided from its bytes, and whether it may be stored.
//
// The rule, documented in README ("File types"):
// 1. file-type recognises the magic bytes → that type.
// 2. Otherwise, bytes that are valid UTF-8 without NUL are text: SVG when the
//    head is an <svg> document; else the declared type if it is a text type
//    (text/csv, application/json, ...); else text/plain. UTF-8 validity is then
//    enforced over the whole stream, not just the head.
// 3. Anything else is application/octet-stream.
// The result must match the allowlist. A declared type (Content-Type) that
// names a different kind of content is refused with TYPE_MISMATCH.

import { fileTypeFromBuffer } from 'file-type';
import { SluiceError } from '../errors.ts';

export interface FileType {
  mime: string;
  ext: string;
}

export interface Detected extends FileType {
  /** True when the type was decided by the text rule; the stream must stay valid UTF-8. */
  text: boolean;
}

/** Bytes file-type needs to recognise almost every format it knows. */
export const SNIFF_BYTES = 4100;

const TEXT_TYPES: Record<string, string> = {
  'text/plain': 'txt',
  'text/csv': 'csv',
  'text/markdown': 'md',
  'application/json': 'json',
  'application/xml': 'xml',
  'text/xml': 'xml',
  'image/svg+xml': 'svg',
  'text/tab-separated-values': 'tsv',
  'application/x-ndjson': 'ndjson',
};

/** Declared types that say nothing about the content. */
const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/unknown']);

/** Names clients use for the same content; compared after mapping to the first entry. */
const ALIAS_GROUPS: string[][] = [
  ['image/jpeg', 'image/jpg', 'image/pjpeg'],
  ['audio/mpeg', 'audio/mp3', 'audio/mpeg3'],
  ['audio/wav', 'audio/x-wav', 'audio/wave', 'audio/vnd.wave'],
  ['application/zip', 'application/x-zip-compressed', 'application/x-zip'],
  ['application/gzip', 'application/x-gzip'],
  ['audio/flac', 'audio/x-flac'],
  ['image/bmp', 'image/x-ms-bmp', 'image/x-bmp'],
  ['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence'],
  ['application/x-tar', 'application/tar'],
  ['image/x-icon', 'image/vnd.microsoft.icon'],
  // ISO BMFF and Matroska/Ogg containers carry audio or video; clients label them either way.
  ['video/mp4', 'audio/mp4', 'application/mp4', 'video/x-m4v', 'audio/x-m4a', 'audio/m4a'],
  ['video/matroska', 'video/x-matroska', 'audio/matroska', 'audio/x-matroska', 'video/webm', 'audio/webm'],
  ['application/ogg', 'audio/ogg', 'video/ogg', 'audio/opus'],
  ['video/quicktime', 'video/mov'],
];
const CANONICAL = new Map<string, string>(ALIAS_GROUPS.flatMap((g) => g.map((m) => [m, g[0] as string] as const)));

export function essence(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function canonical(mime: string): string {
  return CANONICAL.get(mime) ?? mime;
}

function isTextType(mime: string): boolean {
  return mime.startsWith('text/') || mime in TEXT_TYPES || mime.endsWith('+xml') || mime.endsWith('+json');
}

/** `image/*` and `*\/*` wildcards are allowed in the list. */
export function isAllowed(mime: string, allowed: readonly string[]): boolean {
  const [top] = mime.split('/');
  return allowed.some((a) => a === mime || a === '*/*' || a === `${top}/*` || canonical(a) === canonical(mime));
}

function looksLikeUtf8Text(head: Uint8Array): boolean {
  if (head.includes(0)) return false;
  try {
    // stream: true tolerates a multi-byte sequence cut at the end of the head.
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true });
    return true;
  } catch {
    return false;
  }
}

function looksLikeSvg(head: Uint8Array): boolean {
  const text = Buffer.from(head.subarray(0, 1024)).toString('utf8');
  // Skip BOM, XML declaration, comments and a doctype before the root element.
  const stripped = text.replace(/^\uFEFF/, '').replace(/^\s*(<\?xml[^>]*\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>|\s)*/i, '');
  return /^<svg[\s>]/i.test(stripped);
}

export async function detectType(head: Uint8Array, declared: string | undefined): Promise<Detected> {
  const found = await fileTypeFromBuffer(head);
  if (found && !(found.mime === 'application/xml' && looksLikeSvg(head))) {
    return { mime: found.mime, ext: found.ext, text: false };
  }
  if (looksLikeUtf8Text(head)) {
    if (looksLikeSvg(head)) return { mime: 'image/svg+xml', ext: 'svg', text: true };
    const d = essence(declared);
    if (d in TEXT_TYPES && d !== 'image/svg+xml') return { mime: d, ext: TEXT_TYPES[d]!, text: true };
    if (d.startsWith('text/')) return { mime: d, ext: 'txt', text: true };
    return { mime: 'text/plain', ext: 'txt', text: true };
  }
  return { mime: 'application/octet-stream', ext: 'bin', text: false };
}

/** True when the client's declared type names a different kind of content than the bytes. */
export function contradicts(declared: string | undefined, detected: Detected): boolean {
  const d = essence(declared);
  if (GENERIC_TYPES.has(d)) return false;
  if (detected.text) return !isTextType(d);
  return canonical(d) !== canonical(detected.mime);
}

/** Throws the coded refusal, or returns the type to store. Allowlist first: a disguised executable is 415, not 422. */
export function admitType(detected: Detected, declared: string | undefined, allowed: readonly string[]): FileType {
  if (!isAllowed(detected.mime, allowed)) {
    throw new SluiceError('TYPE_NOT_ALLOWED', { details: { detected: detected.mime } });
  }
  if (contradicts(declared, detected)) {
    throw new SluiceError('TYPE_MISMATCH', { details: { declared: essence(declared), detected: detected.mime } });
  }
  return { mime: detected.mime, ext: detected.ext };
}

/** Types a browser could run script from: always served as attachments. */
export function canRenderScript(mime: string): boolean {
  return mime === 'text/html' || mime === 'image/svg+xml' || mime.endsWith('+xml') || mime === 'application/xml' || mime === 'text/xml' || mime === 'application/xhtml+xml';
}

/** Types safe to show inline in a browser. Everything else downloads as an attachment. */
export function isInlineSafe(mime: string): boolean {
  if (canRenderScript(mime)) return false;
  return mime.startsWith('image/') || mime.startsWith('audio/') || mime.startsWith('video/') || mime === 'application/pdf' || mime === 'text/plain';
}
