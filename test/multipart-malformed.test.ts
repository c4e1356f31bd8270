// Malformed multipart bodies, as raw wire bytes, each with its expected answer
// (in the style of busboy's own table tests). Never a 500, never a hang.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it, before, after } from 'node:test';
import { leftovers, startServer, type TestServer } from './helpers/server.ts';
import { pngOfSize } from './helpers/http.ts';

interface Case {
  name: string;
  contentType: string;
  body: Buffer | string;
  /** Overrides the true length (to lie about it). */
  contentLength?: number;
  status: number;
  code: string;
}

const B = 'XyZzY';
const head = (filename = 'a.png', extra = '') =>
  `--${B}\r\nContent-Disposition: form-data; name="f"; filename="${filename}"\r\nContent-Type: image/png\r\n${extra}\r\n`;

async function send(url: string, c: Case): Promise<{ status: number; body: string; ms: number }> {
  const { port } = new URL(url);
  const body = Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body, 'latin1');
  const len = c.contentLength ?? body.length;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let got = '';
    sock.setTimeout(120_000, () => reject(new Error(`no answer for ${c.name}`)));
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => {
      const status = Number(/^HTTP\/1.1 (\d{3})/.exec(got)?.[1] ?? 0);
      resolve({ status, body: got.slice(got.indexOf('\r\n\r\n') + 4), ms: Date.now() - started });
    });
    sock.write(`POST /v1/files HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${c.contentType}\r\nContent-Length: ${len}\r\n\r\n`);
    // A truncated body: the client stops sending (FIN) once its bytes are out, so the server sees the body
    // end early. Never left to the idle timeout, which would answer 408 instead.
    sock.write(body, () => {
      if (len > body.length) sock.end();
    });
  });
}

describe('malformed multipart', () => {
  let srv: TestServer;
  before(async () => {
    // No case here is about the idle timeout: set far off, it cannot answer 408 before a case's own answer.
    srv = await startServer({ env: { SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '120000' } });
  });
  after(() => srv.close());

  it('every malformed body gets its coded 4xx and stores nothing', async () => {
    const png = (await pngOfSize(300)).toString('latin1');
    const cases: Case[] = [
      { name: 'no boundary parameter', contentType: 'multipart/form-data', body: 'x', status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'empty boundary', contentType: 'multipart/form-data; boundary=', body: 'x', status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'body ends before the closing boundary', contentType: `multipart/form-data; boundary=${B}`, body: head() + png, status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'body shorter than Content-Length', contentType: `multipart/form-data; boundary=${B}`, body: head() + png, contentLength: 100_000, status: 400, code: 'MALFORMED_REQUEST' },
      { name: 'boundary never appears', contentType: `multipart/form-data; boundary=${B}`, body: 'just some bytes\r\n', status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'wrong boundary in the body', contentType: `multipart/form-data; boundary=${B}`, body: `--other\r\n${head().slice(B.length + 4)}${png}\r\n--other--\r\n`, status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'part headers over busboy\'s 16 KiB limit', contentType: `multipart/form-data; boundary=${B}`, body: head('a.png', `X-Pad: ${'p'.repeat(80 * 1024)}\r\n`) + png + `\r\n--${B}--\r\n`, status: 400, code: 'MALFORMED_MULTIPART' },
      { name: 'a part without Content-Disposition', contentType: `multipart/form-data; boundary=${B}`, body: `--${B}\r\nContent-Type: image/png\r\n\r\n${png}\r\n--${B}--\r\n`, status: 400, code: 'NO_FILE' },
      { name: 'not multipart at all', contentType: 'application/json', body: '{"a":1}', status: 415, code: 'UNSUPPORTED_CONTENT_TYPE' },
      { name: 'nested multipart inside a part', contentType: `multipart/form-data; boundary=${B}`, body: `--${B}\r\nContent-Disposition: form-data; name="f"; filename="n.bin"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\n\r\nx\r\n--inner--\r\n\r\n--${B}--\r\n`, status: 422, code: 'TYPE_MISMATCH' },
      { name: 'too many parts', contentType: `multipart/form-data; boundary=${B}`, body: Array.from({ length: 200 }, (_, i) => `--${B}\r\nContent-Disposition: form-data; name="k${i}"\r\n\r\nv\r\n`).join('') + `--${B}--\r\n`, status: 413, code: 'TOO_MANY_FIELDS' },
    ];
    for (const c of cases) {
      const r = await send(srv.url, c);
      assert.equal(r.status, c.status, `${c.name}: ${r.body}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, c.code, c.name);
    }
    assert.deepEqual(await leftovers(srv), { keys: [], pending: 0 });
  });

  it('a request with malformed HTTP gets a JSON 400, and oversized headers a 431', async () => {
    const { port } = new URL(srv.url);
    const ask = (raw: string) =>
      new Promise<string>((resolve) => {
        const sock = connect(Number(port), '127.0.0.1');
        let got = '';
        sock.on('data', (d) => (got += d.toString('latin1')));
        sock.on('error', () => {});
        sock.on('close', () => resolve(got));
        sock.write(raw);
      });
    const bad = await ask('POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n');
    assert.match(bad, /^HTTP\/1.1 400/);
    assert.match(bad, /"code":"MALFORMED_REQUEST"/);
    const huge = await ask(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1.1 431/);
    assert.match(huge, /"code":"HEADERS_TOO_LARGE"/);
  });
});
