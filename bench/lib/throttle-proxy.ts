// A TCP proxy on loopback that caps the bytes/s flowing from clients to the
// target (uploads), to make storage slower than the client on purpose. The
// cap is a token bucket shared by all connections; an over-budget socket is
// paused, so backpressure reaches the sender just as a slow network would.

import { createServer, connect, type Socket } from 'node:net';

export interface ThrottleProxy {
  port: number;
  close(): Promise<void>;
}

export async function startThrottleProxy(target: { host: string; port: number }, bytesPerSec: number): Promise<ThrottleProxy> {
  let tokens = bytesPerSec / 10;
  const waiting = new Set<Socket>();
  const refill = setInterval(() => {
    tokens = Math.min(bytesPerSec / 10, tokens + bytesPerSec / 100);
    for (const s of waiting) {
      waiting.delete(s);
      s.resume();
    }
  }, 10);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      tokens -= chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      } else if (tokens < 0) {
        client.pause();
        waiting.add(client);
      }
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      waiting.delete(client);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      clearInterval(refill);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
