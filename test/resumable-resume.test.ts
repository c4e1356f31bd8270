// Faults on real sockets for the IETF draft: a creation whose connection drops
// is resumed from the offset HEAD reports; an append left hanging by a client
// that came back is taken over (ended, its bytes kept); on S3 the resumption
// may come from a second instance sharing the bucket; a disallowed type is
// refused from the first bytes, before the rest of the body is sent. The
// committed file's sha256 is always over the whole upload.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, elf, pngOfSize, sha256 } from './helpers/http.ts';
import { dialect, draft, received, sendPartially } from './helpers/resumable.ts';
import { s3TestServer } from './helpers/s3.ts';
import { until } from './helpers/wait.ts';

const MiB = 1024 * 1024;
const PARTIAL = 'application/partial-upload';

/** Starts a complete creation of `data` on a raw socket, sends `sendBytes`, and returns the socket and the Location from its 104. */
async function startCreation(base: string, data: Buffer, sendBytes: number): Promise<{ sock: Socket; url: string; seen: () => string }> {
  const sock = await sendPartially(`${base}/v1/uploads`, 'POST', { ...dialect(8, true), 'content-type': 'image/png' }, data, 0);
  const seen = received(sock);
  const location = await until(() => /^location: (.+)\r$/im.exec(seen.text())?.[1], 'the 104 with the upload URL');
  await new Promise<void>((resolve) => sock.write(data.subarray(0, sendBytes), () => resolve()));
  return { sock, url: new URL(location, base).toString(), seen: seen.text };
}

/**
 * The client's connection ends mid-body (FIN after what it sent) and the server
 * has seen it: it reads every byte before the FIN, then closes its side. Waiting
 * for that makes the kept offset certain; resuming at once instead would take
 * the old request over wherever it had got to (tested below).
 */
async function dropped(sock: Socket): Promise<void> {
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.end();
  await closed;
}

async function finish(url: string, data: Buffer): Promise<{ id: string; sha256: string }> {
  const head = await draft(url, { method: 'HEAD' });
  assert.equal(head.status, 204, head.body.toString());
  assert.equal(head.headers['upload-complete'], '?0');
  const offset = Number(head.headers['upload-offset']);
  const done = await draft(url, {
    method: 'PATCH',
    headers: { ...dialect(8, true), 'upload-offset': String(offset), 'content-type': PARTIAL },
    body: data.subarray(offset),
  });
  assert.equal(done.status, 200, done.body.toString());
  return done.json<{ files: { id: string; sha256: string }[] }>().files[0]!;
}

for (const backend of backends()) {
  describe(`IETF resumable uploads under faults on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'rufh-resume' });
    });
    after(() => srv.close());

    it('a creation whose connection drops is resumed from the offset HEAD reports', async () => {
      const data = await pngOfSize(9 * MiB + 321);
      const { sock, url } = await startCreation(srv.url, data, 4 * MiB);
      await dropped(sock);
      const head = await draft(url, { method: 'HEAD' });
      const offset = Number(head.headers['upload-offset']);
      assert.ok(offset > 0 && offset <= 4 * MiB, `the bytes that arrived are kept, never more than were sent (offset ${offset})`);
      const file = await finish(url, data);
      assert.equal(file.sha256, sha256(data), 'sha256 over the whole upload');
      assert.equal((await call(`${srv.url}/v1/files/${file.id}`)).json<{ sha256: string }>().sha256, sha256(data));
    });

    it('an append still open when its client comes back is taken over: ended without an answer, its bytes kept', async () => {
      const data = await pngOfSize(6 * MiB + 5);
      const made = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...dialect(8, false), 'upload-length': String(data.length) } });
      const url = new URL(String(made.headers.location), srv.url).toString();
      // The client sends 2 MiB of the append, then goes silent with its connection open (a half-dead network).
      const old = await sendPartially(url, 'PATCH', { ...dialect(8, true), 'upload-offset': '0', 'content-type': PARTIAL }, data, 2 * MiB);
      const oldSeen = received(old);
      const closed = new Promise<void>((resolve) => old.once('close', () => resolve()));
      // Without the takeover this HEAD would wait for the old request's lock until the lock timeout.
      const file = await finish(url, data);
      await closed;
      assert.doesNotMatch(oldSeen.text(), /HTTP\/1\.1 [2-5]\d\d/, 'the old request got no final answer');
      assert.equal(file.sha256, sha256(data));
    });

    it('a disallowed type is refused from the first bytes, before the rest is sent, and the upload removed', async () => {
      const bad = Buffer.concat([elf(), Buffer.alloc(4 * MiB)]);
      const { sock, url, seen } = await startCreation(srv.url, bad, 64 * 1024);
      const answer = await until(() => /HTTP\/1\.1 415[^]*\r\n\r\n[^]*\}/.exec(seen())?.[0], 'the 415 while most of the body is unsent');
      sock.destroy();
      assert.match(answer, /content-type: application\/problem\+json/i);
      assert.match(answer, /"code":"TYPE_NOT_ALLOWED"/);
      assert.equal((await draft(url, { method: 'HEAD' })).status, 404, 'the upload is gone');
    });
  });
}

describe('IETF resumable upload resumed on a second instance sharing the bucket', { skip: s3TestServer() ? false : 'needs S3' }, () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    // A long idle timeout: a hanging request on A must be ended by B's takeover, not by A's timer.
    const env = { SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '120000', SLUICE_TUS_LOCK_TIMEOUT_MS: '60000' };
    a = await startServer({ backend: 's3', label: 'rufh-two', env });
    b = await startServer({ backend: 's3', label: 'rufh-two-b', env: { ...env, SLUICE_S3_BUCKET: a.bucket! } });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('dropped on A, resumed and finished on B: the bucket lock passes over, the file is exact', async () => {
    const data = await pngOfSize(12 * MiB + 77);
    const { sock, url } = await startCreation(a.url, data, 7 * MiB);
    await dropped(sock);
    const onB = new URL(new URL(url).pathname, b.url).toString();
    const file = await finish(onB, data);
    assert.equal(file.sha256, sha256(data));
    assert.equal((await call(`${a.url}/v1/files/${file.id}`)).json<{ sha256: string }>().sha256, sha256(data));
  });

  it('an append hanging on A is taken over from B: A ends it without an answer, its bytes kept, B finishes', async () => {
    const data = await pngOfSize(12 * MiB + 5);
    const made = await draft(`${a.url}/v1/uploads`, { method: 'POST', headers: { ...dialect(8, false), 'upload-length': String(data.length) } });
    const url = new URL(String(made.headers.location), a.url).toString();
    // 7 MiB of the append, then silence with the connection open (a half-dead network).
    const old = await sendPartially(url, 'PATCH', { ...dialect(8, true), 'upload-offset': '0', 'content-type': PARTIAL }, data, 7 * MiB);
    const oldSeen = received(old);
    const closed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    // Without a release request across instances, B's HEAD waits for A's lock until the lock timeout (60 s, under A's 120 s idle timeout);
    // with it, about one heartbeat of A's lease (10 s).
    const onB = new URL(new URL(url).pathname, b.url).toString();
    const file = await finish(onB, data);
    await closed;
    assert.doesNotMatch(oldSeen.text(), /HTTP\/1\.1 [2-5]\d\d/, 'the old request got no final answer');
    assert.equal(file.sha256, sha256(data));
    assert.equal((await call(`${a.url}/v1/files/${file.id}`)).json<{ sha256: string }>().sha256, sha256(data));
  });
});

describe('IETF resumable append past the upload deadline', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ label: 'rufh-deadline', env: { SLUICE_UPLOAD_DEADLINE_MS: '1000' } });
  });
  after(() => srv.close());

  it('is cut off with 408 UPLOAD_DEADLINE_EXCEEDED as a problem, and the bytes that arrived are kept', async () => {
    // Small, so the requests after the cut (each with its own 1 s deadline) stay far inside it on a loaded machine.
    const data = await pngOfSize(300 * 1024);
    const made = await draft(`${srv.url}/v1/uploads`, { method: 'POST', headers: { ...dialect(8, false), 'upload-length': String(data.length) } });
    const url = new URL(String(made.headers.location), srv.url).toString();
    // 256 KiB of the append, then silence: only the deadline can end it.
    const sock = await sendPartially(url, 'PATCH', { ...dialect(8, true), 'upload-offset': '0', 'content-type': PARTIAL }, data, 256 * 1024);
    const seen = received(sock);
    const answer = await until(() => /HTTP\/1\.1 408[^]*\r\n\r\n[^]*\}/.exec(seen.text())?.[0], 'the 408 at the deadline');
    sock.destroy();
    assert.match(answer, /"code":"UPLOAD_DEADLINE_EXCEEDED"/);
    assert.match(answer, /content-type: application\/problem\+json/i);
    const file = await finish(url, data);
    assert.equal(file.sha256, sha256(data));
  });
});
