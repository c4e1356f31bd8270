// When S3 cannot be reached: 503 STORAGE_UNAVAILABLE with Retry-After, /ready 503, never a 500 or a hang.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it, before, after } from 'node:test';
import { startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize } from './helpers/http.ts';

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('storage down', () => {
  let srv: TestServer;
  before(async () => {
    const port = await closedPort();
    srv = await startServer({
      env: {
        SLUICE_STORAGE: 's3',
        SLUICE_S3_ENDPOINT: `http://127.0.0.1:${port}`,
        SLUICE_S3_BUCKET: 'nowhere',
        SLUICE_S3_ACCESS_KEY_ID: 'x',
        SLUICE_S3_SECRET_ACCESS_KEY: 'y',
        SLUICE_S3_FORCE_PATH_STYLE: 'true',
      },
    });
  });
  after(() => srv.close());

  it('uploads answer 503 STORAGE_UNAVAILABLE with Retry-After', async () => {
    const r = await call(`${srv.url}/v1/files/a.png`, { method: 'PUT', body: await pngOfSize(1000) });
    assert.equal(r.status, 503);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'STORAGE_UNAVAILABLE');
    assert.ok(Number(r.headers['retry-after']) > 0);
    assert.doesNotMatch(r.body.toString(), /nowhere|127\.0\.0\.1/, 'no bucket name or endpoint in the error body');
  });

  it('reads and listings answer 503 too; /ready is 503 and /health 200', async () => {
    assert.equal((await call(`${srv.url}/v1/files`)).status, 503);
    assert.equal((await call(`${srv.url}/v1/files/01a212cf-59ae-7003-b8f9-d54c2b184cd3`)).status, 503);
    assert.equal((await call(`${srv.url}/ready`)).status, 503);
    assert.equal((await call(`${srv.url}/health`)).status, 200);
  });
});
