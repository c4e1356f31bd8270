// Slow clients cannot hold the server: headers dribbled a byte at a time are
// cut off by the headers timeout, and connections past the cap are refused.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startServer({ env: { SLUICE_HEADERS_TIMEOUT_MS: '600', SLUICE_MAX_CONNECTIONS: '4' } });
});
after(() => srv.close());

function open(): Promise<Socket> {
  const { port } = new URL(srv.url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with what the server sent when it closes the socket. */
function closed(s: Socket): Promise<string> {
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.on('error', () => {});
  return new Promise((resolve) => s.once('close', () => resolve(got)));
}

test('headers dribbled one byte at a time are cut off by the headers timeout', async () => {
  const s = await open();
  const ended = closed(s);
  const started = performance.now();
  const head = 'GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(1000);
  let i = 0;
  const drip = setInterval(() => {
    if (!s.destroyed && i < head.length) s.write(head[i++]!);
  }, 50);
  const answer = await ended;
  clearInterval(drip);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 3000, `cut off after ${Math.round(elapsed)} ms`);
  assert.ok(i < head.length, 'the whole header block was accepted');
  assert.match(answer, /^HTTP\/1\.1 408/);
  assert.match(answer, /"code":"REQUEST_TIMEOUT"/);
});

test('connections past SLUICE_MAX_CONNECTIONS are closed at once; the server serves again afterwards', async () => {
  const held = await Promise.all([open(), open(), open(), open()]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const extra = await open();
  const started = performance.now();
  await closed(extra);
  assert.ok(performance.now() - started < 1000);
  for (const s of held) s.destroy();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const res = await fetch(`${srv.url}/health`);
  assert.equal(res.status, 200);
});

test('a small request body dribbled a byte at a time is cut off (uploads have their own idle timeout)', async () => {
  const s = await open();
  const ended = closed(s);
  const started = performance.now();
  s.write('POST /v1/admin/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"subject":"');
  const drip = setInterval(() => {
    if (!s.destroyed) s.write('a');
  }, 100);
  await ended;
  clearInterval(drip);
  const elapsed = performance.now() - started;
  assert.ok(elapsed > 500 && elapsed < 3000, `cut off after ${Math.round(elapsed)} ms`);
});
