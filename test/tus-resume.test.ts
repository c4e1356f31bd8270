// A connection cut mid-PATCH (real socket over loopback): the server keeps
// what it stored, HEAD tells the client where to resume, and the finished
// file is byte-identical.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { createUpload, offsetOf, patch } from './helpers/tus.ts';
import { until } from './helpers/wait.ts';

const MiB = 1024 * 1024;

/** Sends PATCH headers for the whole rest of the upload, then only `sendBytes` of it, then drops the connection. */
async function patchThenDrop(url: string, offset: number, body: Buffer, sendBytes: number): Promise<void> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(
    `PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: ${offset}\r\n` +
      `Content-Type: application/offset+octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  await new Promise<void>((resolve) => sock.write(body.subarray(0, sendBytes), () => resolve()));
  // Drop only once the server has stored most of what was sent (all but a socket buffer).
  await until(async () => (await offsetOf(url)) >= sendBytes - MiB, 'the server to store what arrived');
  sock.destroy();
}

/** HEAD until the offset stops moving (the dropped request's writes have settled). */
async function settledOffset(url: string): Promise<number> {
  let last = -1;
  for (let same = 0; same < 5; ) {
    const now = await offsetOf(url);
    same = now === last ? same + 1 : 0;
    last = now;
    await sleep(200);
  }
  return last;
}

for (const backend of backends()) {
  describe(`tus resume after a dropped connection on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-resume' });
    });
    after(() => srv.close());

    it('resumes from the offset HEAD reports and commits the exact bytes', async () => {
      const data = await pngOfSize(16 * MiB + 777);
      const { url } = await createUpload(srv.url, data.length, { filename: 'resumed.png' });
      await patchThenDrop(url, 0, data, 11 * MiB);
      const offset = await settledOffset(url);
      // Everything that arrived before the drop is kept (at most a socket buffer short), never more than was sent.
      assert.ok(offset >= 10 * MiB, `bytes before the drop were kept (offset ${offset})`);
      assert.ok(offset <= 11 * MiB, 'never more than was sent');
      const done = await patch(url, offset, data.subarray(offset));
      assert.equal(done.status, 204, done.body.toString());
      const id = String(done.headers['sluice-file-id']);
      const file = await call(`${srv.url}/v1/files/${id}`);
      assert.equal(file.json<{ sha256: string; size: number }>().sha256, sha256(data));
      const content = await call(`${srv.url}/v1/files/${id}/content`);
      assert.equal(sha256(content.body), sha256(data));
    });
  });
}
