// Uploads are keyed by the request's tenant: another tenant's upload URL
// resolves to nothing (HEAD, PATCH, DELETE all 404) and the file lands under
// the uploader's tenant only. The tenant is set by a test hook standing in for
// the auth plugin, which sets request.tenant the same way.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp, defaultDeps, type SluiceApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createStorage } from '../src/storage/index.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { TUS, createUpload, patch } from './helpers/tus.ts';
import { TEST_SERVER_ENV } from './helpers/test-env.ts';

describe('tus uploads and tenants', () => {
  let app: SluiceApp;
  let base: string;
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-tus-tenant-'));
    const config = loadConfig({ ...TEST_SERVER_ENV, LOG_LEVEL: 'silent', SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir });
    const deps = await defaultDeps(config, await createStorage(config), createLogger(config));
    app = await buildApp(deps);
    app.addHook('onRequest', async (request) => {
      const t = request.headers['x-test-tenant'];
      if (typeof t === 'string') request.tenant = t;
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("one tenant cannot see, write or terminate another tenant's upload", async () => {
    const data = await pngOfSize(40_000);
    const alice = { 'x-test-tenant': 'alice' };
    const mallory = { 'x-test-tenant': 'mallory' };
    const { res, url } = await createUpload(base, data.length, { filename: 'a.png' }, alice);
    assert.equal(res.status, 201);
    assert.equal((await patch(url, 0, data.subarray(0, 10_000), alice)).status, 204);

    assert.equal((await call(url, { method: 'HEAD', headers: { ...TUS, ...mallory } })).status, 404);
    assert.equal((await patch(url, 10_000, data.subarray(10_000), mallory)).status, 404);
    assert.equal((await call(url, { method: 'DELETE', headers: { ...TUS, ...mallory } })).status, 404);

    const done = await patch(url, 10_000, data.subarray(10_000), alice);
    assert.equal(done.status, 204);
    const id = String(done.headers['sluice-file-id']);
    assert.equal((await call(`${base}/v1/files/${id}`, { headers: mallory })).status, 404);
    const mine = await call(`${base}/v1/files/${id}`, { headers: alice });
    assert.equal(mine.json<{ sha256: string }>().sha256, sha256(data));
  });
});
