// Every limit answers its coded 4xx and commits nothing.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it, before, after } from 'node:test';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { call, multipartBody, pngOfSize } from './helpers/http.ts';

const code = (r: { json: () => unknown }) => (r.json() as { error: { code: string } }).error.code;

/** Writes a request head (and body) by hand; resolves with everything the server answered, once a final JSON answer is complete. */
function rawExchange(url: string, head: string, body?: Buffer): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let got = '';
    const giveUp = setTimeout(() => sock.end(), 15_000);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      const final = got.replace(/^HTTP\/1.1 100 Continue\r\n\r\n/, '');
      if (/^HTTP\/1.1 [2-5]\d\d/.test(final) && final.includes('\r\n\r\n') && final.trimEnd().endsWith('}')) sock.end();
    });
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(giveUp);
      resolve(got);
    });
    sock.write(head);
    if (body) sock.write(body);
  });
}

for (const backend of backends()) {
  describe(`limits on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({
        backend,
        label: 'limits',
        env: {
          SLUICE_MAX_FILE_BYTES: String(6 * 1024 * 1024),
          SLUICE_MAX_REQUEST_BYTES: String(8 * 1024 * 1024),
          SLUICE_MAX_FILES: '2',
          SLUICE_MAX_FIELDS: '3',
          SLUICE_MAX_FIELD_BYTES: '100',
        },
      });
    });
    after(() => srv.close());

    it('PUT with a Content-Length over the file limit is refused before the body is read', async () => {
      const reply = await rawExchange(srv.url, `PUT /v1/files/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${7 * 1024 * 1024}\r\n\r\n`);
      assert.match(reply, /^HTTP\/1.1 413/);
      assert.match(reply, /"code":"FILE_TOO_LARGE"/);
    });

    it('Expect: 100-continue over the limit gets 413 and never a 100 Continue', async () => {
      const reply = await rawExchange(srv.url, `PUT /v1/files/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${7 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`);
      assert.doesNotMatch(reply, /100 Continue/);
      assert.match(reply, /^HTTP\/1.1 413/);
    });

    it('Expect: 100-continue within the limit gets 100 Continue, then the upload succeeds', async () => {
      const png = await pngOfSize(1000);
      const reply = await rawExchange(
        srv.url,
        `PUT /v1/files/ok.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${png.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        png,
      );
      assert.match(reply, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 201/);
      const id = /"id":"([^"]+)"/.exec(reply)?.[1];
      assert.equal((await call(`${srv.url}/v1/files/${id}`, { method: 'DELETE' })).status, 204);
    });

    it('a chunked PUT that grows past the limit is cut off with FILE_TOO_LARGE, nothing stored', async () => {
      const png = await pngOfSize(7 * 1024 * 1024);
      async function* body() {
        for (let i = 0; i < png.length; i += 256 * 1024) yield png.subarray(i, i + 256 * 1024);
      }
      const r = await call(`${srv.url}/v1/files/grow.png`, { method: 'PUT', body: body() });
      assert.equal(r.status, 413);
      assert.equal(code(r), 'FILE_TOO_LARGE');
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('a multipart file past the file limit is FILE_TOO_LARGE, nothing stored', async () => {
      const form = multipartBody([{ name: 'f', filename: 'big.png', data: await pngOfSize(6 * 1024 * 1024 + 1) }]);
      const r = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(r.status, 413);
      assert.equal(code(r), 'FILE_TOO_LARGE');
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('a multipart request past the request limit is REQUEST_TOO_LARGE', async () => {
      const form = multipartBody([
        { name: 'a', filename: 'a.png', data: await pngOfSize(5 * 1024 * 1024) },
        { name: 'b', filename: 'b.png', data: await pngOfSize(5 * 1024 * 1024) },
      ]);
      const r = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(r.status, 413);
      assert.equal(code(r), 'REQUEST_TOO_LARGE');
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });

    it('too many files, too many fields and an oversized field each have their code', async () => {
      const png = await pngOfSize(200);
      const cases: Array<[string, Parameters<typeof multipartBody>[0]]> = [
        ['TOO_MANY_FILES', [1, 2, 3].map((i) => ({ name: `f${i}`, filename: `${i}.png`, data: png }))],
        ['TOO_MANY_FIELDS', [1, 2, 3, 4].map((i) => ({ name: `k${i}`, data: 'v' })).concat([{ name: 'f', filename: 'a.png', data: png } as never])],
        ['FIELD_TOO_LARGE', [{ name: 'k', data: 'x'.repeat(101) }, { name: 'f', filename: 'a.png', data: png }]],
      ];
      for (const [expected, parts] of cases) {
        const form = multipartBody(parts);
        const r = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
        assert.equal(r.status, 413, expected);
        assert.equal(code(r), expected);
      }
      assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
    });
  });
}
