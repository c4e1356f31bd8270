// Content a browser could run script from (HTML, SVG, XML) is always served as
// an attachment with nosniff and a sandbox CSP, even when inline is asked for;
// so is everything else that is not known to be inline-safe.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startServer({ env: { SLUICE_ALLOWED_TYPES: 'image/svg+xml,text/html,text/plain,application/xml' } });
});
after(() => srv.close());

const CASES = [
  { name: 'x.svg', type: 'image/svg+xml', body: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>' },
  { name: 'x.html', type: 'text/html', body: '<!doctype html><html><body><script>alert(1)</script></body></html>' },
];

test('HTML and SVG uploads are served as attachments with nosniff and a sandbox CSP', async () => {
  for (const c of CASES) {
    const up = await call(`${srv.url}/v1/files/${c.name}`, { method: 'PUT', headers: { 'content-type': c.type }, body: c.body });
    assert.equal(up.status, 201, up.body.toString());
    const f = up.json<{ files: { id: string; type: { mime: string } }[] }>().files[0]!;
    assert.equal(f.type.mime, c.type);
    for (const query of ['', '?download=0']) {
      const r = await call(`${srv.url}/v1/files/${f.id}/content${query}`);
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-disposition']), /^attachment/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.match(String(r.headers['content-security-policy']), /sandbox/);
    }
  }
});
