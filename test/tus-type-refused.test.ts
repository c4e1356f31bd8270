// A disallowed type is refused at the first PATCH, from its first bytes,
// before the rest of a large body is even sent, and the upload is removed.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { elf, pngOfSize } from './helpers/http.ts';
import { createUpload, head, patch, settledLeftovers } from './helpers/tus.ts';

const MiB = 1024 * 1024;

/** Sends the PATCH headers for `length` bytes and only `head`; resolves with the raw response, which must come first. */
async function patchHeadOnly(url: string, length: number, first: Buffer): Promise<string> {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  let answer = '';
  const done = new Promise<string>((resolve) => {
    sock.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n\r\n') && /\}\s*$/.test(answer)) resolve(answer);
    });
    sock.on('close', () => resolve(answer));
  });
  sock.write(
    `PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nContent-Length: ${length}\r\n\r\n`,
  );
  sock.write(first);
  const res = await done;
  sock.destroy();
  return res;
}

for (const backend of backends()) {
  describe(`tus type check on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-type' });
    });
    after(() => srv.close());

    it('an executable is refused with 415 TYPE_NOT_ALLOWED after its first bytes, and nothing is left', async () => {
      const { url } = await createUpload(srv.url, 50 * MiB, { filename: 'holiday.png', filetype: 'image/png' });
      const first = Buffer.concat([elf(), Buffer.alloc(64 * 1024 - 256)]);
      const raw = await patchHeadOnly(url, 50 * MiB, first);
      assert.match(raw, /^HTTP\/1\.1 415 /);
      assert.match(raw, /"code":"TYPE_NOT_ALLOWED"/);
      assert.match(raw, /tus-resumable: 1\.0\.0/i);
      assert.equal((await head(url)).status, 404);
      const left = await settledLeftovers(srv);
      assert.deepEqual(left, { keys: [], pending: 0 });
    });

    it('a declared type contradicting the bytes is refused with 422 TYPE_MISMATCH', async () => {
      const data = await pngOfSize(20_000);
      const { url } = await createUpload(srv.url, data.length, { filename: 'x.pdf', filetype: 'application/pdf' });
      const res = await patch(url, 0, data);
      assert.equal(res.status, 422);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'TYPE_MISMATCH');
      assert.equal((await head(url)).status, 404);
    });

    it('text that turns invalid UTF-8 in a later PATCH is refused and removed', async () => {
      const text = Buffer.from('id,name\n'.repeat(2000));
      const bad = Buffer.concat([Buffer.from('more,rows\n'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
      const { url } = await createUpload(srv.url, text.length + bad.length, { filename: 'rows.csv', filetype: 'text/csv' });
      assert.equal((await patch(url, 0, text)).status, 204);
      const res = await patch(url, text.length, bad);
      assert.equal(res.status, 415);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'TYPE_NOT_ALLOWED');
      assert.equal((await head(url)).status, 404);
      assert.deepEqual(await settledLeftovers(srv), { keys: [], pending: 0 });
    });

    it('a first PATCH shorter than the sniff window defers the check to the finish, which refuses', async () => {
      const bytes = Buffer.concat([elf(), Buffer.alloc(10_000)]);
      const { url } = await createUpload(srv.url, bytes.length);
      assert.equal((await patch(url, 0, bytes.subarray(0, 100))).status, 204);
      const res = await patch(url, 100, bytes.subarray(100));
      assert.equal(res.status, 415);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'TYPE_NOT_ALLOWED');
      assert.deepEqual(await settledLeftovers(srv), { keys: [], pending: 0 });
    });
  });
}
