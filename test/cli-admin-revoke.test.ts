// `sluice admin revoke` sends POST /v1/admin/revoke with exactly one of
// { subject } or { tenant } and the bearer token, and never prints the token.
// The route itself belongs to the auth work; this checks the request the CLI
// makes against a recording server, and how it reports the answer.

import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers/cli.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('sluice admin revoke', () => {
  const seen: Seen[] = [];
  let url: string;
  let answer: { status: number; body: unknown } = { status: 200, body: { revoked: true } };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (s: string) => (body += s));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('revokes a subject and a tenant with the documented request', async () => {
    const token = 'admin-token-do-not-print';
    const bySubject = await runCli(['admin', 'revoke', '--subject', 'alice@example.com', '--server', url], { env: { SLUICE_TOKEN: token } });
    assert.equal(bySubject.code, 0, bySubject.stderr);
    assert.deepEqual(JSON.parse(bySubject.stdout), { revoked: true });
    const byTenant = await runCli(['admin', 'revoke', '--tenant', 'acme', '--server', url, '--token', token]);
    assert.equal(byTenant.code, 0, byTenant.stderr);
    for (const [i, body] of [{ subject: 'alice@example.com' }, { tenant: 'acme' }].entries()) {
      assert.equal(seen[i]!.method, 'POST');
      assert.equal(seen[i]!.url, '/v1/admin/revoke');
      assert.equal(seen[i]!.headers.authorization, `Bearer ${token}`);
      assert.match(String(seen[i]!.headers['content-type']), /^application\/json/);
      assert.deepEqual(JSON.parse(seen[i]!.body), body);
    }
    for (const r of [bySubject, byTenant]) assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token));
  });

  it('refuses both or neither option, and reports a refusal with its code', async () => {
    const count = seen.length;
    assert.equal((await runCli(['admin', 'revoke', '--server', url])).code, 2);
    assert.equal((await runCli(['admin', 'revoke', '--subject', 'a', '--tenant', 'b', '--server', url])).code, 2);
    assert.equal(seen.length, count, 'nothing sent');
    answer = { status: 403, body: { error: { code: 'FORBIDDEN', message: 'admin scope required', requestId: 'r1' } } };
    const denied = await runCli(['admin', 'revoke', '--subject', 'bob', '--server', url]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /FORBIDDEN: admin scope required/);
  });
});
