// A real HTTP proxy on loopback that forwards to a sluice instance and lets a
// test decide, request by request, to answer itself (503, ...), to corrupt
// the body in transit, or to forward untouched. It records what it saw.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';

export interface SeenRequest {
  n: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export type Verdict =
  | { kind: 'forward' }
  /** Flip one byte of the request body on its way to the server. */
  | { kind: 'corrupt' }
  /** Forward, but cut the connection after `bytes` bytes of the response body. */
  | { kind: 'truncate'; bytes: number }
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: string };

export interface FaultProxy {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string, decide: (req: SeenRequest) => Verdict): Promise<FaultProxy> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const r: SeenRequest = { n: seen.length + 1, method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    seen.push(r);
    const verdict = decide(r);
    void (async () => {
      if (verdict.kind === 'answer') {
        req.resume();
        res.writeHead(verdict.status, { connection: 'close', ...verdict.headers });
        res.end(verdict.body ?? '');
        return;
      }
      const headers = { ...req.headers };
      delete headers.host;
      delete headers.connection;
      let flipped = false;
      const body =
        req.method === 'GET' || req.method === 'HEAD' || req.method === 'DELETE'
          ? null
          : verdict.kind === 'corrupt'
            ? Readable.from(
                (async function* () {
                  for await (const chunk of req as AsyncIterable<Buffer>) {
                    if (!flipped && chunk.length > 0) {
                      const c = Buffer.from(chunk);
                      c[c.length - 1] = c[c.length - 1]! ^ 0x01; // stays ASCII: still valid text, just wrong
                      flipped = true;
                      yield c;
                    } else yield chunk;
                  }
                })(),
              )
            : req;
      const up = await request(upstream + r.url, { method: r.method as 'PUT', headers, body });
      res.writeHead(up.statusCode, up.headers as Record<string, string>);
      if (verdict.kind === 'truncate') {
        let left = verdict.bytes;
        for await (const chunk of up.body as AsyncIterable<Buffer>) {
          const part = chunk.subarray(0, left);
          left -= part.length;
          if (part.length > 0) await new Promise<void>((resolve) => res.write(part, () => resolve()));
          if (left <= 0) break;
        }
        up.body.destroy();
        res.socket?.destroy();
        return;
      }
      await pipeline(up.body, res);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
