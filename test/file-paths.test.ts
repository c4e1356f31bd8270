// A file's relative path (`?path=` on PUT, a `path` / `<field>.path` field
// before a multipart file part) is validated, not repaired: every unsafe
// form is refused with 400 INVALID_PATH before anything is stored; a good
// one is stored NFC-normalised, shown in the file view, and filtered on by
// `GET /v1/files?prefix=`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, multipartBody } from './helpers/http.ts';
import { leftovers, startServer, type TestServer } from './helpers/server.ts';

const BAD: Array<[string, string]> = [
  ['../etc/passwd', 'dot-dot first'],
  ['a/../../b', 'dot-dot inside'],
  ['a/./b', 'a dot segment'],
  ['/etc/passwd', 'absolute'],
  ['C:/Windows/win.ini', 'drive letter'],
  ['a\\b.txt', 'backslash'],
  ['a//b', 'empty segment'],
  ['a/b/', 'trailing slash'],
  ['a\u0000b', 'NUL'],
  ['a\nb', 'newline'],
  ['a\u202Etxt.exe', 'bidi override'],
  ['x'.repeat(256), 'segment over 255 bytes'],
  [Array.from({ length: 200 }, () => 'abcdef').join('/'), 'over 1024 bytes'],
  [Array.from({ length: 65 }, () => 'a').join('/'), 'over 64 segments'],
];

describe('file paths', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ label: 'paths' });
  });
  after(() => srv.close());

  it('PUT ?path= refuses every unsafe path with INVALID_PATH and stores nothing', async () => {
    for (const [p, why] of BAD) {
      const r = await call(`${srv.url}/v1/files/x.txt?path=${encodeURIComponent(p)}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(r.status, 400, `${why}: ${r.body.toString()}`);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'INVALID_PATH', why);
    }
    assert.deepEqual((await leftovers(srv)).keys, []);
  });

  it('a multipart path field refuses unsafe paths too, and the request stores nothing', async () => {
    for (const [p, why] of BAD.slice(0, 6)) {
      const { body, contentType } = multipartBody([
        { name: 'path', data: 'ok/first.txt' },
        { name: 'file', filename: 'first.txt', contentType: 'text/plain', data: 'one' },
        { name: 'file.path', data: p },
        { name: 'file', filename: 'second.txt', contentType: 'text/plain', data: 'two' },
      ]);
      const r = await call(`${srv.url}/v1/files`, { method: 'POST', headers: { 'content-type': contentType }, body });
      assert.equal(r.status, 400, `${why}: ${r.body.toString()}`);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'INVALID_PATH');
    }
    assert.deepEqual((await leftovers(srv)).keys, []);
  });

  it('stores good paths NFC-normalised, one per multipart file, and lists them by prefix', async () => {
    const nfd = 'cafe\u0301/ni\u0303o.txt';
    const put = await call(`${srv.url}/v1/files/nino.txt?path=${encodeURIComponent(nfd)}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'n' });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.json<{ files: { path: string }[] }>().files[0]!.path, nfd.normalize('NFC'));

    const { body, contentType } = multipartBody([
      { name: 'path', data: 'docs/2024/a.txt' },
      { name: 'file', filename: 'a.txt', contentType: 'text/plain', data: 'a' },
      { name: 'path', data: 'docs/2025/a.txt' },
      { name: 'file', filename: 'a.txt', contentType: 'text/plain', data: 'b' },
      // No path field: the bare `path` described only the part after it, so this one's path is its name.
      { name: 'file', filename: 'plain.txt', contentType: 'text/plain', data: 'c' },
    ]);
    const r = await call(`${srv.url}/v1/files`, { method: 'POST', headers: { 'content-type': contentType }, body });
    assert.equal(r.status, 201, r.body.toString());
    assert.deepEqual(r.json<{ files: { path: string }[] }>().files.map((f) => f.path), ['docs/2024/a.txt', 'docs/2025/a.txt', 'plain.txt']);

    const list = async (prefix: string) => (await call(`${srv.url}/v1/files?prefix=${encodeURIComponent(prefix)}`)).json<{ files: { path: string }[] }>().files.map((f) => f.path).sort();
    assert.deepEqual(await list('docs/'), ['docs/2024/a.txt', 'docs/2025/a.txt']);
    assert.deepEqual(await list('docs/2025'), ['docs/2025/a.txt']);
    assert.deepEqual(await list('caf\u00e9/'), [nfd.normalize('NFC')], 'the prefix is NFC-normalised too');
    assert.deepEqual(await list('nothing/'), []);
    const bad = await call(`${srv.url}/v1/files?prefix=${encodeURIComponent('../')}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json<{ error: { code: string } }>().error.code, 'INVALID_PATH');
  });
});
