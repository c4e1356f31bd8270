// A body that stalls is aborted with 408 after the idle timeout and nothing is
// committed; a slow but steady body is not (no 300 s requestTimeout either).

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it, before, after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { pngOfSize } from './helpers/http.ts';

const IDLE_MS = 2000;

function exchange(url: string, head: string, feed: (sock: Socket) => Promise<void>): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), '127.0.0.1');
    let got = '';
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => resolve(got));
    sock.write(head);
    void feed(sock);
  });
}

for (const backend of backends()) {
  describe(`upload idle timeout on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'timeout', env: { SLUICE_UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_MS), SLUICE_HEADERS_TIMEOUT_MS: '1000' } });
    });
    after(() => srv.close());

    it('a stalled body gets 408 UPLOAD_TIMEOUT and leaves nothing', async () => {
      const png = await pngOfSize(6 * 1024 * 1024);
      const reply = await exchange(srv.url, `PUT /v1/files/stall.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${png.length * 2}\r\n\r\n`, async (sock) => {
        sock.write(png); // then nothing more
      });
      assert.match(reply, /^HTTP\/1.1 408/);
      assert.match(reply, /"code":"UPLOAD_TIMEOUT"/);
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('a slow body that keeps sending within the idle window completes', async () => {
      const png = await pngOfSize(64 * 1024);
      const reply = await exchange(srv.url, `PUT /v1/files/slow.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${png.length}\r\nConnection: close\r\n\r\n`, async (sock) => {
        // 16 slices 200 ms apart: 3.2 s in all, longer than the idle limit, each gap a tenth of it
        // (a margin a loaded machine's stalls do not eat).
        for (let i = 0; i < 16; i++) {
          sock.write(png.subarray(i * 4096, (i + 1) * 4096));
          await sleep(IDLE_MS / 10);
        }
      });
      assert.match(reply, /^HTTP\/1.1 201/);
    });

    it('headers dribbled slower than the headers timeout are cut off', async () => {
      const reply = await exchange(srv.url, 'GET /health HTTP/1.1\r\n', async (sock) => {
        for (let i = 0; i < 40 && !sock.destroyed; i++) {
          await sleep(100);
          if (!sock.destroyed) sock.write('X');
        }
      });
      // 40 bytes 100 ms apart never end the header block: only the 1 s headers timeout can answer.
      assert.match(reply, /^HTTP\/1.1 408/);
    });
  });
}
