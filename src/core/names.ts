// File names are client input that ends up in JSON and in Content-Disposition
// headers (never in storage keys: those are ids). Keep them printable, single
// segment, free of bidi tricks and bounded.

const MAX_NAME_BYTES = 255;
// C0/C1 controls, DEL, and bidi embedding/override/isolate marks (RTL spoofing).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

export function sanitizeFileName(raw: string | undefined | null): string {
  let name = (raw ?? '').normalize('NFC');
  name = name.split(/[/\\]/).pop() ?? '';
  name = name.replace(UNSAFE, '').replace(/\s+/g, ' ').trim();
  name = name.replace(/^\.+/, '').trim();
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) name = truncateUtf8(name, MAX_NAME_BYTES);
  return name === '' ? 'file' : name;
}

function truncateUtf8(s: string, maxBytes: number): string {
  // Keep the extension when there is a short one.
  const dot = s.lastIndexOf('.');
  const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
  let out = '';
  const budget = maxBytes - Buffer.byteLength(ext);
  for (const ch of s.slice(0, s.length - ext.length)) {
    if (Buffer.byteLength(out + ch) > budget) break;
    out += ch;
  }
  return out + ext;
}
