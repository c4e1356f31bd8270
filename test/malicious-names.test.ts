// Hostile file names are stored safely: storage keys hold only ids, and the
// name kept in the manifest and sent in Content-Disposition has no path
// separators, control characters or bidi overrides, and is at most 255 bytes.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startServer();
});
after(() => srv.close());

const NAMES = ['../../etc/passwd', '..\\..\\windows\\win.ini', 'a\u0000b.txt', 'invoice\u202Etxt.exe', 'x'.repeat(1000) + '.txt', '\r\nSet-Cookie: a=b', '.htaccess', '/', 'é'.repeat(400)];
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const UNSAFE = /[/\\\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/;

function checkName(name: string): void {
  assert.ok(!UNSAFE.test(name), JSON.stringify(name));
  assert.ok(Buffer.byteLength(name) <= 255, `${Buffer.byteLength(name)} bytes`);
  assert.ok(name.length > 0 && !name.startsWith('.'), JSON.stringify(name));
}

async function checkStored(id: string): Promise<void> {
  const meta = await call(`${srv.url}/v1/files/${id}`);
  checkName(meta.json<{ name: string }>().name);
  const content = await call(`${srv.url}/v1/files/${id}/content`);
  const cd = String(content.headers['content-disposition']);
  assert.ok(!cd.includes('\r') && !cd.includes('\n') && !cd.includes('\u0000'), cd);
  assert.ok(!cd.includes('..\\') && !cd.includes('../'), cd);
}

test('raw uploads (PUT /v1/files/:name) with hostile names', async () => {
  for (const name of NAMES) {
    const r = await call(`${srv.url}/v1/files/${encodeURIComponent(name)}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(r.status, 201, `${JSON.stringify(name)}: ${r.body.toString()}`);
    await checkStored(r.json<{ files: { id: string }[] }>().files[0]!.id);
  }
});

test('multipart uploads with hostile filenames (raw bytes and RFC 5987 encoded)', async () => {
  for (const name of NAMES) {
    const safeForHeader = name.replace(/[\r\n"]/g, '_');
    for (const disposition of [`filename="${safeForHeader}"`, `filename*=UTF-8''${encodeURIComponent(name)}`]) {
      const body = Buffer.concat([
        Buffer.from(`--b\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: text/plain\r\n\r\n`, 'utf8'),
        Buffer.from('hello\r\n--b--\r\n'),
      ]);
      const r = await call(`${srv.url}/v1/files`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body });
      // A raw NUL in a part header is a malformed header: refusing the request is as safe as cleaning the name.
      if (name.includes('\u0000') && disposition.startsWith('filename=')) {
        assert.equal(r.json<{ error: { code: string } }>().error.code, 'MALFORMED_MULTIPART');
        continue;
      }
      assert.equal(r.status, 201, `${JSON.stringify(name)}: ${r.body.toString()}`);
      await checkStored(r.json<{ files: { id: string }[] }>().files[0]!.id);
    }
  }
});

test('router refusals (bad %-encoding) answer in the service error shape', async () => {
  const r = await call(`${srv.url}/v1/files/%E0%A4%A`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(r.status, 400);
  assert.equal(r.json<{ error: { code: string } }>().error.code, 'INVALID_INPUT');
});

test('every storage key is <prefix>/<tenant>/<uuid>/<fixed name>', async () => {
  const { objects } = await srv.storage.list({ prefix: `${srv.config.keyPrefix}/` });
  assert.ok(objects.length > 0);
  // Job outputs and job markers (docs/jobs.md) are named by job and file id, never by client input either.
  for (const o of objects) assert.match(o.key, /^sluice\/(default\/[0-9a-f-]{36}\/(original|manifest\.json|variants\/[a-z][a-z0-9-]{0,31})|_system\/jobs\/default\/[0-9a-f-]{36})$/);
});
