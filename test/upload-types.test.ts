// Types are decided by the bytes: allowlist, disguised files, declared-vs-detected, the text rule.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { leftovers, startServer, type TestServer } from './helpers/server.ts';
import { call, elf, jpeg, pngOfSize, type UploadedFile } from './helpers/http.ts';

describe('type validation', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ label: 'types' });
  });
  after(() => srv.close());

  const put = (name: string, body: Buffer | string, contentType?: string) =>
    call(`${srv.url}/v1/files/${encodeURIComponent(name)}`, { method: 'PUT', body, headers: contentType ? { 'content-type': contentType } : {} });
  const code = (r: { json: () => unknown }) => (r.json() as { error: { code: string } }).error.code;

  it('an ELF executable named .jpg and declared image/jpeg is refused as TYPE_NOT_ALLOWED', async () => {
    const r = await put('cat.jpg', elf(), 'image/jpeg');
    assert.equal(r.status, 415);
    assert.equal(code(r), 'TYPE_NOT_ALLOWED');
  });

  it('a JPEG declared as image/png is TYPE_MISMATCH (422)', async () => {
    const r = await put('x.png', await jpeg(), 'image/png');
    assert.equal(r.status, 422);
    assert.equal(code(r), 'TYPE_MISMATCH');
  });

  it('the name never decides: a PNG named .pdf is stored as image/png', async () => {
    const r = await put('report.pdf', await pngOfSize(500));
    assert.equal(r.status, 201);
    assert.equal(r.json<{ files: UploadedFile[] }>().files[0]!.type.mime, 'image/png');
  });

  it('aliases and generic declarations are not mismatches', async () => {
    assert.equal((await put('a.jpg', await jpeg(), 'image/jpg')).status, 201);
    assert.equal((await put('b.jpg', await jpeg(), 'application/octet-stream')).status, 201);
  });

  it('text: CSV and JSON are taken as declared when the bytes are UTF-8', async () => {
    const csv = await put('a.csv', 'name,city\nZoë,Kraków\n', 'text/csv');
    assert.equal(csv.status, 201);
    assert.deepEqual(csv.json<{ files: UploadedFile[] }>().files[0]!.type, { mime: 'text/csv', ext: 'csv' });
    const json = await put('a.json', '{"a":1}', 'application/json');
    assert.deepEqual(json.json<{ files: UploadedFile[] }>().files[0]!.type, { mime: 'application/json', ext: 'json' });
    const plain = await put('notes', 'just words');
    assert.equal(plain.json<{ files: UploadedFile[] }>().files[0]!.type.mime, 'text/plain');
  });

  it('text that turns out not to be UTF-8 past the sniffed head is refused, nothing stored', async () => {
    const before = (await leftovers(srv)).keys.length;
    const body = Buffer.concat([Buffer.alloc(100_000, 'a'), Buffer.from([0xff, 0xfe, 0x00, 0x01])]);
    const r = await put('sneaky.txt', body, 'text/plain');
    assert.equal(r.status, 415);
    assert.equal(code(r), 'TYPE_NOT_ALLOWED');
    assert.equal((await leftovers(srv)).keys.length, before);
  });

  it('text declared as an image is a mismatch', async () => {
    const r = await put('x.png', 'hello', 'image/png');
    assert.equal(r.status, 422);
  });

  it('SVG is detected from its markup and never served inline', async () => {
    const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
    const r = await put('logo.svg', svg, 'image/svg+xml');
    assert.equal(r.status, 201, r.body.toString());
    const f = r.json<{ files: UploadedFile[] }>().files[0]!;
    assert.equal(f.type.mime, 'image/svg+xml');
    const got = await call(`${srv.url}/v1/files/${f.id}/content`);
    assert.match(String(got.headers['content-disposition']), /^attachment/);
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['content-security-policy']), /sandbox/);
  });

  it('binary of unknown type is refused by the default allowlist', async () => {
    const r = await put('blob.bin', Buffer.from([0x00, 0x01, 0x02, 0x03, 0xff, 0x00]));
    assert.equal(r.status, 415);
  });

  it('the allowlist is configurable, wildcards included', async () => {
    const narrow = await startServer({ env: { SLUICE_ALLOWED_TYPES: 'image/*' } });
    try {
      assert.equal((await call(`${narrow.url}/v1/files/a.png`, { method: 'PUT', body: await pngOfSize(300) })).status, 201);
      assert.equal((await call(`${narrow.url}/v1/files/a.txt`, { method: 'PUT', body: 'text' })).status, 415);
    } finally {
      await narrow.close();
    }
  });
});
