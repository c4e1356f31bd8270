// SIGTERM mid-upload, on the real server process: /ready turns 503 at once,
// an upload that finishes within the grace period is committed intact, one
// that does not is aborted (its client gets an error) and leaves nothing in
// storage; the process exits 0 either way.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { childLeftovers, rawUpload, startChild, uploadsInflight } from './helpers/child-server.ts';
import { pngOfSize, sha256 } from './helpers/http.ts';
import { backends } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

const MiB = 1024 * 1024;

for (const backend of backends()) {
  describe(`graceful shutdown on ${backend}`, () => {
    // On S3, more than one 5 MiB part: the upload is a multipart upload when the signal lands.
    const size = backend === 's3' ? 12 * MiB : 2 * MiB;

    it('drains: /ready 503 and new uploads refused at once, in-flight upload completes within the grace period', async () => {
      const srv = await startChild({ backend, label: 'shutdown-drain', env: { SLUICE_SHUTDOWN_DRAIN_DELAY_MS: '10000', SLUICE_SHUTDOWN_GRACE_MS: '20000' } });
      try {
        const data = await pngOfSize(size);
        const up = await rawUpload(srv.port, { path: '/v1/files/drain.png', length: data.length });
        await up.write(data.subarray(0, 7 * MiB > size ? size / 2 : 7 * MiB));
        await until(async () => (await uploadsInflight(srv.url)) === 1, 'the upload to be in flight');
        srv.proc.kill('SIGTERM');
        await srv.waitForLog((l) => l.msg === 'shutdown: draining');

        const ready = await fetch(`${srv.url}/ready`);
        assert.equal(ready.status, 503);
        assert.equal(((await ready.json()) as { error: { code: string } }).error.code, 'SHUTTING_DOWN');
        const refused = await fetch(`${srv.url}/v1/files/late.txt`, { method: 'PUT', body: 'late' });
        assert.equal(refused.status, 503);
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'SHUTTING_DOWN');
        assert.ok(refused.headers.get('retry-after'));

        await up.write(data.subarray(7 * MiB > size ? size / 2 : 7 * MiB));
        const res = await up.response();
        assert.equal(res.status, 201, res.body);
        const file = (JSON.parse(res.body) as { files: { id: string; sha256: string }[] }).files[0]!;
        assert.equal(file.sha256, sha256(data));
        const { code } = await srv.exited;
        assert.equal(code, 0);

        const left = await childLeftovers(srv);
        assert.equal(left.pending, 0);
        assert.ok(left.keys.some((k) => k.endsWith(`${file.id}/manifest.json`)), 'committed');
        assert.ok(left.keys.some((k) => k.endsWith(`${file.id}/original`)), 'original stored');
        assert.equal(left.keys.length, 2, `only the committed file: ${left.keys.join(', ')}`);
      } finally {
        await srv.cleanup();
      }
    });

    it('aborts uploads that outlive the grace period: the client gets an error, storage keeps nothing', async () => {
      const srv = await startChild({ backend, label: 'shutdown-abort', env: { SLUICE_SHUTDOWN_GRACE_MS: '800', SLUICE_SHUTDOWN_ABORT_MS: '60000' } });
      try {
        const first = randomBytes(backend === 's3' ? 6 * MiB : MiB);
        const up = await rawUpload(srv.port, { path: '/v1/files/stalled.bin', length: 40 * MiB });
        await up.write(Buffer.concat([await pngOfSize(1024), first]));
        // In flight, and on S3 with its first part stored: the abort has a multipart upload to clean up.
        await until(async () => (await uploadsInflight(srv.url)) === 1 && (backend === 'fs' || (await childLeftovers(srv)).pending > 0), 'the first part to reach storage');
        srv.proc.kill('SIGTERM');
        const res = await up.response();
        // Either the 503 arrives before the connection closes, or the close is the error.
        if (res.status !== 0) {
          assert.equal(res.status, 503, res.body);
          assert.match(res.body, /SHUTTING_DOWN/, JSON.stringify(res));
        }
        const { code } = await srv.exited;
        assert.equal(code, 0, JSON.stringify(srv.logs.slice(-8), null, 1));
        const aborted = srv.logs.find((l) => l.msg === 'shutdown: grace period over, aborting in-flight uploads');
        assert.ok(aborted, 'the grace period ran out');
        assert.deepEqual(await childLeftovers(srv), { keys: [], pending: 0 });
      } finally {
        await srv.cleanup();
      }
    });
  });
}
