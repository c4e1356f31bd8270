// Raw requests of the IETF resumable-upload draft for protocol tests, over
// node:http (which reports 1xx interim answers, unlike undici's request), with
// a fresh connection each so a test that drops one never disturbs another.

import http from 'node:http';
import { connect, type Socket } from 'node:net';

export interface DraftAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** 1xx interim answers before the final one, in order. */
  interim: { status: number; headers: Record<string, string | string[] | undefined> }[];
  json<T = Record<string, unknown>>(): T;
}

export function draft(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Uint8Array> } = {},
): Promise<DraftAnswer> {
  return new Promise((resolve, reject) => {
    const interim: DraftAnswer['interim'] = [];
    const headers = { ...opts.headers };
    if (Buffer.isBuffer(opts.body) && headers['content-length'] === undefined) headers['content-length'] = String(opts.body.length);
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: false });
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, interim, json: <T>() => JSON.parse(body.toString('utf8')) as T });
      });
    });
    if (opts.body === undefined) req.end();
    else if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else {
      const body = opts.body;
      (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch((err: unknown) => req.destroy(err as Error));
    }
  });
}

/** Headers of one interop version: the completeness field in its spelling. */
export function dialect(version: number | undefined, complete: boolean): Record<string, string> {
  const v: Record<string, string> = version === undefined ? {} : { 'upload-draft-interop-version': String(version) };
  if (version === 3) return { ...v, 'upload-incomplete': complete ? '?0' : '?1' };
  return { ...v, 'upload-complete': complete ? '?1' : '?0' };
}

/** Whether an answer says the upload is complete, in either spelling. */
export function saysComplete(headers: Record<string, string | string[] | undefined>): boolean | undefined {
  if (headers['upload-complete'] !== undefined) return headers['upload-complete'] === '?1';
  if (headers['upload-incomplete'] !== undefined) return headers['upload-incomplete'] === '?0';
  return undefined;
}

/**
 * Sends a request's head and `sendBytes` of a declared longer body on a raw
 * socket, and returns the socket still open (the caller drops it, or leaves
 * it hanging as a half-dead client would).
 */
export async function sendPartially(url: string, method: string, headers: Record<string, string>, body: Buffer, sendBytes: number): Promise<Socket> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  sock.on('error', () => {}); // the server may end it first
  await new Promise((r) => sock.once('connect', r));
  const head = Object.entries({ host: u.host, 'content-length': String(body.length), ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  sock.write(`${method} ${u.pathname} HTTP/1.1\r\n${head}\r\n`);
  await new Promise<void>((resolve) => sock.write(body.subarray(0, sendBytes), () => resolve()));
  return sock;
}

/** Everything the server has written on a raw socket so far, as text (interim and final heads). */
export function received(sock: Socket): { text: () => string } {
  let text = '';
  sock.on('data', (c: Buffer) => {
    text += c.toString('latin1');
  });
  return { text: () => text };
}
