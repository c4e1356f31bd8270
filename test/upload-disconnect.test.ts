// A client that goes away mid-upload leaves no object and no pending multipart upload.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it, before, after } from 'node:test';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { pngOfSize } from './helpers/http.ts';
import { listPendingMultipartUploads } from './helpers/s3.ts';
import { until } from './helpers/wait.ts';

for (const backend of backends()) {
  describe(`client disconnect on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'disconnect' });
    });
    after(() => srv.close());

    for (const route of ['PUT', 'POST'] as const) {
      it(`${route}: socket destroyed after several parts were sent`, async () => {
        const total = 40 * 1024 * 1024;
        const data = await pngOfSize(12 * 1024 * 1024);
        const { port } = new URL(srv.url);
        const sock = connect(Number(port), '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        if (route === 'PUT') {
          sock.write(`PUT /v1/files/cut.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
        } else {
          const boundary = 'cutcutcut';
          sock.write(`POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${total}\r\n\r\n`);
          sock.write(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="cut.png"\r\n\r\n`);
        }
        await new Promise<void>((resolve) => sock.write(data, () => resolve()));
        // The cut must come mid-upload: admitted, and on S3 with its multipart upload started.
        await until(
          async () => srv.deps.budget.used > 0 && (!srv.s3 || (await listPendingMultipartUploads(srv.s3, srv.bucket!)).length > 0),
          'the upload to be under way',
        );
        sock.destroy();
        // The abort removes what was stored, then gives the buffer budget back.
        await until(async () => {
          const l = await leftovers(srv);
          return l.keys.length === 0 && l.pending === 0 && srv.deps.budget.used === 0;
        }, 'no leftovers').catch(async (err: unknown) => assert.fail(`${String(err)}: ${JSON.stringify(await leftovers(srv))}, budget used ${srv.deps.budget.used}`));
        // And the service is still healthy.
        const res = await fetch(`${srv.url}/health`);
        assert.equal(res.status, 200);
        assert.equal(srv.deps.budget.used, 0, 'buffer budget released');
      });
    }
  });
}
