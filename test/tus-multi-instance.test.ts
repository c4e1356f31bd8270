// Two instances on one bucket: PATCHes for one upload may reach either. The
// lock held in the bucket (conditional PutObject) serialises them, so
// concurrent PATCHes never interleave and the committed file is exactly the
// bytes the winning requests carried.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';
import { createUpload, offsetOf, patch } from './helpers/tus.ts';
import { listKeys, s3TestServer } from './helpers/s3.ts';
import { until } from './helpers/wait.ts';

const MiB = 1024 * 1024;

/** The body in `pieces`, `delayMs` apart; `sent.pieces` counts what the client has handed over. */
function slowly(buf: Buffer, pieces: number, delayMs: number): { body: AsyncGenerator<Uint8Array>; sent: { pieces: number } } {
  const sent = { pieces: 0 };
  const size = Math.ceil(buf.length / pieces);
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < buf.length; i += size) {
      yield buf.subarray(i, i + size);
      sent.pieces++;
      await sleep(delayMs);
    }
  }
  return { body: body(), sent };
}

describe('tus on two instances sharing one bucket', { skip: s3TestServer() ? false : 'needs S3' }, () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startServer({ backend: 's3', label: 'tus-two' });
    b = await startServer({ backend: 's3', label: 'tus-two-b', env: { SLUICE_S3_BUCKET: a.bucket! } });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('PATCHes alternating between instances assemble the exact file', async () => {
    const data = await pngOfSize(17 * MiB + 5);
    const { url } = await createUpload(a.url, data.length, { filename: 'both.png' });
    const path = new URL(url).pathname;
    const cuts = [0, 5 * MiB, 10 * MiB, 15 * MiB, data.length];
    let last;
    for (let i = 0; i < cuts.length - 1; i++) {
      const via = i % 2 === 0 ? b : a;
      last = await patch(`${via.url}${path}`, cuts[i]!, data.subarray(cuts[i], cuts[i + 1]));
      assert.equal(last.status, 204, `PATCH ${i} via ${via === a ? 'A' : 'B'}`);
    }
    const id = String(last!.headers['sluice-file-id']);
    const viaA = await call(`${a.url}/v1/files/${id}`);
    assert.equal(viaA.json<{ sha256: string }>().sha256, sha256(data));
  });

  it('concurrent PATCHes at one offset on two instances: one wins, the other gets 409, nothing interleaves', async () => {
    const total = 14 * MiB;
    const first = await pngOfSize(6 * MiB);
    const rival = await pngOfSize(6 * MiB);
    const rest = await pngOfSize(total - 6 * MiB);
    const { url } = await createUpload(a.url, total, { filename: 'race.png' });
    const path = new URL(url).pathname;
    const headers = { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream', 'content-length': String(first.length) };
    const lockPrefix = `${a.config.keyPrefix}/_system/tus/locks/`;
    const slowBody = slowly(first, 12, 80);
    const slow = call(`${a.url}${path}`, { method: 'PATCH', headers, body: slowBody.body });
    // A holds the lock and is mid-body: its lock is in the bucket and the client is past its first pieces.
    await until(async () => slowBody.sent.pieces >= 3 && (await listKeys(a.s3!, a.bucket!, lockPrefix)).length > 0, 'A to take the lock');
    const fast = call(`${b.url}${path}`, { method: 'PATCH', headers, body: rival });
    const [ra, rb] = await Promise.all([slow, fast]);
    assert.equal(ra.status, 204, `A: ${ra.body.toString()}`);
    assert.equal(rb.status, 409, `B waited for the lock, then found the offset moved: ${rb.body.toString()}`);
    assert.equal(await offsetOf(`${b.url}${path}`), 6 * MiB);

    const done = await patch(`${b.url}${path}`, 6 * MiB, rest);
    assert.equal(done.status, 204);
    const id = String(done.headers['sluice-file-id']);
    const file = await call(`${a.url}/v1/files/${id}/content`);
    assert.equal(sha256(file.body), sha256(Buffer.concat([first, rest])));
    // Each instance keeps an idle lock for a second (the client's next PATCH reuses it), then gives it back.
    await until(async () => (await listKeys(a.s3!, a.bucket!, lockPrefix)).length === 0, 'every lock to be released');
  });

  it('an upload terminated on one instance is gone on the other, never reported complete', async () => {
    const data = await pngOfSize(6 * MiB);
    const { url } = await createUpload(a.url, 12 * MiB, { filename: 'gone.png' });
    const path = new URL(url).pathname;
    assert.equal((await patch(`${a.url}${path}`, 0, data)).status, 204);
    assert.equal(await offsetOf(`${b.url}${path}`), 6 * MiB, 'B has read (and cached) the upload');
    assert.equal((await call(`${a.url}${path}`, { method: 'DELETE', headers: { 'tus-resumable': '1.0.0' } })).status, 204);
    const res = await call(`${b.url}${path}`, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } });
    assert.equal(res.status, 404);
  });
});
