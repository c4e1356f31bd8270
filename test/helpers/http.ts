// Small HTTP helpers over undici for tests, plus test payloads.

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import sharp from 'sharp';

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

export async function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string | AsyncIterable<Uint8Array> } = {},
): Promise<Answer> {
  const res = await request(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers ?? {},
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? opts.body : Readable.from(opts.body) } : {}),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  };
}

let pngHead: Buffer | undefined;
/** A real PNG followed by random bytes: detected as image/png, any size ≥ the PNG itself. */
export async function pngOfSize(size: number): Promise<Buffer> {
  pngHead ??= await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366cc' } }).png().toBuffer();
  if (size < pngHead.length) throw new Error(`png needs at least ${pngHead.length} bytes`);
  return Buffer.concat([pngHead, randomBytes(size - pngHead.length)]);
}

export async function jpeg(): Promise<Buffer> {
  return sharp({ create: { width: 16, height: 16, channels: 3, background: '#cc3366' } }).jpeg().toBuffer();
}

/** A minimal 64-bit ELF header: an executable, whatever its name says. */
export function elf(): Buffer {
  const b = Buffer.alloc(256);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(b);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  return b;
}

export interface FormPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer | string;
}

/** A multipart/form-data body on the wire, for exact control over every byte. */
export function multipartBody(parts: FormPart[], boundary = `----sluice${randomBytes(8).toString('hex')}`): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.contentType) head += `Content-Type: ${p.contentType}\r\n`;
    chunks.push(Buffer.from(head + '\r\n'), Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export interface UploadedFile {
  id: string;
  name: string;
  size: number;
  sha256: string;
  type: { mime: string; ext: string };
}
