// A tus PATCH is an upload like any other, so it goes through upload admission
// (src/http/upload-admission.ts): refused with SHUTTING_DOWN while the instance
// drains, and it waits for (here: is refused without) the process-wide upload
// buffer budget. Before, PATCH bodies bypassed both: a draining instance kept
// taking bytes, and any number of PATCHes buffered at once past the budget.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp, defaultDeps } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createStorage } from '../src/storage/index.ts';
import { pngOfSize } from './helpers/http.ts';
import { createUpload, offsetOf, patch } from './helpers/tus.ts';
import { TEST_SERVER_ENV } from './helpers/test-env.ts';

const code = (res: { json<T>(): T }) => res.json<{ error: { code: string } }>().error.code;

describe('tus PATCH goes through upload admission', () => {
  let dir: string;
  let url: string;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let deps: Awaited<ReturnType<typeof defaultDeps>>;
  const drain = new AbortController();
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-tus-admission-'));
    const config = loadConfig({
      ...TEST_SERVER_ENV, PORT: '0', LOG_LEVEL: 'silent', SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dir, SLUICE_JOBS_POOL_SIZE: '0',
      SLUICE_UPLOAD_BUFFER_BYTES: String(1024 * 1024), SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: '0', SLUICE_TUS_SWEEP_INTERVAL_MS: '0',
      SLUICE_TUS_CHECKSUM_SPOOL_BYTES: String(1024 * 1024),
    });
    const storage = await createStorage(config);
    deps = await defaultDeps(config, storage, createLogger(config));
    app = await buildApp({ ...deps, drainSignal: drain.signal });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    assert.ok(addr && typeof addr === 'object');
    url = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    app.server.closeAllConnections();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('waits for the buffer budget like any upload: with it all taken, a PATCH is refused BUSY and stores nothing', async () => {
    const data = await pngOfSize(20_000);
    const { res, url: upload } = await createUpload(url, data.length, { filename: 'budget.png' });
    assert.equal(res.status, 201);
    // Another upload holds the whole budget.
    const release = await deps.budget.reserve(deps.budget.capacity, { timeoutMs: 0 });
    try {
      const refused = await patch(upload, 0, data);
      assert.equal(refused.status, 503, refused.body.toString());
      assert.equal(code(refused), 'BUSY');
      assert.equal(await offsetOf(upload), 0);
    } finally {
      release();
    }
    const done = await patch(upload, 0, data);
    assert.equal(done.status, 204, done.body.toString());
    assert.ok(done.headers['sluice-file-id']);
  });

  it('checksummed PATCH bodies spool within SLUICE_TUS_CHECKSUM_SPOOL_BYTES: past it 507 CHECKSUM_SPOOL_FULL, nothing stored, the space given back', async () => {
    const data = await pngOfSize(1600 * 1024);
    const sum = (b: Buffer) => ({ 'upload-checksum': `sha1 ${createHash('sha1').update(b).digest('base64')}` });
    const { res, url: upload } = await createUpload(url, data.length, { filename: 'spool.png' });
    assert.equal(res.status, 201);
    // One body over the process-wide spool: before, the whole of it went to the temp dir.
    const refused = await patch(upload, 0, data, sum(data));
    assert.equal(refused.status, 507, refused.body.toString());
    assert.equal(code(refused), 'CHECKSUM_SPOOL_FULL');
    assert.equal(await offsetOf(upload), 0);
    // Smaller PATCHes fit, one after another: what the refused one took was given back.
    const half = 800 * 1024;
    assert.equal((await patch(upload, 0, data.subarray(0, half), sum(data.subarray(0, half)))).status, 204);
    const done = await patch(upload, half, data.subarray(half), sum(data.subarray(half)));
    assert.equal(done.status, 204, done.body.toString());
    assert.ok(done.headers['sluice-file-id']);
  });

  it('is refused SHUTTING_DOWN while the instance drains; the upload stays resumable elsewhere', async () => {
    const data = await pngOfSize(20_000);
    const { res, url: upload } = await createUpload(url, data.length, { filename: 'drain.png' });
    assert.equal(res.status, 201);
    assert.equal((await patch(upload, 0, data.subarray(0, 5000))).status, 204);
    drain.abort();
    const refused = await patch(upload, 5000, data.subarray(5000));
    assert.equal(refused.status, 503, refused.body.toString());
    assert.equal(code(refused), 'SHUTTING_DOWN');
    assert.equal(await offsetOf(upload), 5000);
  });
});
