// Slow clients cannot hold the server: headers dribbled a byte at a time are
// cut off by the headers timeout, and connections past the cap are refused.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

let srv: TestServer;
before(async () => {
  srv = await startServer({ env: { SLUICE_HEADERS_TIMEOUT_MS: '600', SLUICE_MAX_CONNECTIONS: '4' } });
});
after(() => srv.close());

const connections = () => new Promise<number>((resolve, reject) => srv.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

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
  const head = 'GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'a'.repeat(1000);
  let i = 0;
  const drip = setInterval(() => {
    if (!s.destroyed && i < head.length) s.write(head[i++]!);
  }, 50);
  const answer = await ended;
  clearInterval(drip);
  // The whole block takes 50 s to dribble; the 600 ms headers timeout cut it off long before.
  assert.ok(i < head.length, 'the whole header block was accepted');
  assert.match(answer, /^HTTP\/1\.1 408/);
  assert.match(answer, /"code":"REQUEST_TIMEOUT"/);
});

test('connections past SLUICE_MAX_CONNECTIONS are closed at once; the server serves again afterwards', async () => {
  const held = await Promise.all([open(), open(), open(), open()]);
  // The server counts a connection once it has accepted it, which can come after the client's connect.
  await until(async () => (await connections()) === 4, 'the server to hold four connections');
  const extra = await open();
  // Closed by the server, not by a timeout: the headers timeout (600 ms) is not what ends it, and
  // the extra socket never sent a byte, so only the connection cap can close it.
  assert.equal(await closed(extra), '');
  for (const s of held) s.destroy();
  await until(async () => (await connections()) === 0, 'the held connections to close');
  const res = await fetch(`${srv.url}/health`);
  assert.equal(res.status, 200);
});

test('a small request body dribbled a byte at a time is cut off (uploads have their own idle timeout)', async () => {
  const s = await open();
  const ended = closed(s);
  const started = performance.now();
  let sent = 0;
  s.write('POST /v1/admin/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"subject":"');
  const drip = setInterval(() => {
    if (!s.destroyed && sent < 1000) s.write('a', () => sent++);
  }, 100);
  await ended;
  clearInterval(drip);
  const elapsed = performance.now() - started;
  // Never before the timeout; and the body (100 s to dribble) was cut off, not finished.
  assert.ok(elapsed > 500, `cut off after ${Math.round(elapsed)} ms`);
  assert.ok(sent < 1000, 'the whole body was accepted');
});
