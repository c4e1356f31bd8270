// Security headers on every answer (success, error, download), CORS only for
// configured origins (preflights answered without credentials), and logs that
// never carry tokens, API keys or link signatures.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { buildApp, defaultDeps, type SluiceApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createStorage } from '../src/storage/index.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { apiKey, bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { TEST_SERVER_ENV } from './helpers/test-env.ts';

describe('headers and CORS', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: hsEnv({ SLUICE_CORS_ORIGINS: 'https://app.example.com' }) });
  });
  after(() => srv.close());

  test('helmet headers on successes and errors', async () => {
    for (const r of [await call(`${srv.url}/health`), await call(`${srv.url}/v1/files`), await call(`${srv.url}/nope`)]) {
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
      assert.ok(r.headers['strict-transport-security']);
      assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
    }
  });

  test('an allowed origin gets CORS headers, a preflight needs no token; other origins get none', async () => {
    const pre = await call(`${srv.url}/v1/files`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(pre.headers['access-control-allow-headers']), /authorization/);
    const ok = await call(`${srv.url}/v1/files`, { headers: { origin: 'https://app.example.com', ...bearer(await hsToken()) } });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(ok.headers['access-control-expose-headers']), /x-request-id/);
    const evil = await call(`${srv.url}/v1/files`, { headers: { origin: 'https://evil.example.com', ...bearer(await hsToken()) } });
    assert.equal(evil.headers['access-control-allow-origin'], undefined);
  });
});

describe('log redaction', () => {
  let app: SluiceApp;
  let dir: string;
  const lines: string[] = [];
  const key = apiKey('ci', 'acme', ['files:read', 'files:write']);
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-logs-'));
    const config = loadConfig({ ...TEST_SERVER_ENV, ...hsEnv({ SLUICE_AUTH_API_KEYS: JSON.stringify([key.entry]) }), SLUICE_DATA_DIR: dir, LOG_LEVEL: 'debug' });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    app = await buildApp(await defaultDeps(config, await createStorage(config), createLogger(config, sink)));
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('tokens, API keys and link signatures never reach the logs', async () => {
    const token = await hsToken({ tenant: 'acme' });
    const up = await app.inject({ method: 'PUT', url: '/v1/files/a.txt', headers: { ...bearer(token), 'content-type': 'text/plain' }, payload: 'hi' });
    const id = up.json<{ files: { id: string }[] }>().files[0]!.id;
    await app.inject({ method: 'GET', url: '/v1/files', headers: { 'x-api-key': key.key } });
    await app.inject({ method: 'GET', url: '/v1/files', headers: bearer(`${token}x`) });
    const link = await app.inject({ method: 'POST', url: `/v1/files/${id}/links`, headers: bearer(token) });
    const url = new URL(link.json<{ url: string }>().url);
    const sig = url.searchParams.get('sig')!;
    assert.equal((await app.inject({ method: 'GET', url: url.pathname + url.search })).statusCode, 200);

    for (const l of lines) JSON.parse(l); // every line is JSON
    const all = lines.join('\n');
    assert.ok(all.includes('sig=[redacted]'), 'the link request was logged');
    for (const secret of [token, token.split('.')[2]!, key.key, sig]) assert.ok(!all.includes(secret), `leaked ${secret.slice(0, 12)}…`);
  });
});
