// The reaper is tied to how long uploads live. It removes file folders without
// a manifest once they are older than SLUICE_REAPER_MAX_AGE_MS, so:
//   - start-up refuses a max age that does not exceed the tus expiry or the
//     total deadline of an upload request (either would let it reap live work);
//   - every upload request has that total deadline (SLUICE_UPLOAD_DEADLINE_MS):
//     a body still arriving past it is refused 408 UPLOAD_DEADLINE_EXCEEDED and
//     nothing of it is stored, so no request outlives what the reaper assumes;
//   - a folder with a tus marker (an upload not yet committed or expired) is
//     never reaped, whatever its age: the tus expiry sweep owns it.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../src/config.ts';
import { sweepOnce } from '../src/core/reaper.ts';
import { call, pngOfSize } from './helpers/http.ts';
import { createUpload, offsetOf, patch } from './helpers/tus.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const HOUR = 3600_000;
const DEADLINE_MS = 1500;

describe('reaper max age against upload lifetimes (config)', () => {
  it('refuses a max age that does not exceed the tus expiry, naming both variables on one line', () => {
    assert.throws(
      () => loadConfig({ SLUICE_REAPER_MAX_AGE_MS: String(2 * HOUR), SLUICE_TUS_EXPIRY_MS: String(3 * HOUR), SLUICE_UPLOAD_DEADLINE_MS: String(HOUR) }),
      (e: Error) => e instanceof ConfigError && /^invalid SLUICE_REAPER_MAX_AGE_MS: .*SLUICE_TUS_EXPIRY_MS/.test(e.message) && !e.message.includes('\n'),
    );
  });

  it('refuses a max age that does not exceed the upload deadline', () => {
    assert.throws(
      () => loadConfig({ SLUICE_REAPER_MAX_AGE_MS: String(2 * HOUR), SLUICE_TUS_EXPIRY_MS: String(HOUR), SLUICE_UPLOAD_DEADLINE_MS: String(2 * HOUR) }),
      (e: Error) => e instanceof ConfigError && /^invalid SLUICE_REAPER_MAX_AGE_MS: .*SLUICE_UPLOAD_DEADLINE_MS/.test(e.message) && !e.message.includes('\n'),
    );
  });

  it('the defaults hold the relation', () => {
    const c = loadConfig({});
    assert.ok(c.ops.reaper.maxAgeMs > c.tus.expiryMs);
    assert.ok(c.ops.reaper.maxAgeMs > c.timeouts.uploadDeadlineMs);
  });
});

/** A body that sends a few bytes every 100 ms (never idle) until told to stop. */
function dribble(head: Buffer): { body: AsyncIterable<Uint8Array>; stop(): void } {
  let stopped = false;
  return {
    stop: () => {
      stopped = true;
    },
    body: (async function* () {
      yield head;
      // Bounded, so a server that never answers fails the test instead of hanging it.
      for (let i = 0; i < 1200 && !stopped; i++) {
        await new Promise((r) => setTimeout(r, 100));
        yield randomBytes(16);
      }
    })(),
  };
}

for (const backend of backends()) {
  describe(`upload lifetimes on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'reaper-lifetime', env: { SLUICE_UPLOAD_DEADLINE_MS: String(DEADLINE_MS), SLUICE_TUS_SWEEP_INTERVAL_MS: '0' } });
    });
    after(() => srv.close());

    it('a PUT still sending at its deadline is refused 408 UPLOAD_DEADLINE_EXCEEDED and leaves nothing', async () => {
      const before = await leftovers(srv);
      const d = dribble(await pngOfSize(4096));
      const res = await call(`${srv.url}/v1/files/slow.png`, { method: 'PUT', body: d.body }).finally(() => d.stop());
      assert.equal(res.status, 408, res.body.toString());
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPLOAD_DEADLINE_EXCEEDED');
      assert.deepEqual((await leftovers(srv)).keys, before.keys);
    });

    it('a tus PATCH still sending at its deadline is refused 408, and the upload stays resumable', async () => {
      const data = await pngOfSize(64 * 1024);
      const { res: created, url } = await createUpload(srv.url, data.length, { filename: 'slow.png' });
      assert.equal(created.status, 201);
      const d = dribble(data.subarray(0, 1024));
      const res = await call(url, {
        method: 'PATCH',
        headers: { 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
        body: d.body,
      }).finally(() => d.stop());
      assert.equal(res.status, 408, res.body.toString());
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'UPLOAD_DEADLINE_EXCEEDED');
      // Whatever the store kept is kept; the upload resumes from its offset and commits.
      const offset = await offsetOf(url);
      const done = await patch(url, offset, data.subarray(offset));
      assert.equal(done.status, 204, done.body.toString());
      const id = String(done.headers['sluice-file-id']);
      const got = await call(`${srv.url}/v1/files/${id}/content`);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(data));
    });

    it('never reaps the folder of a live tus upload, however old it looks', async () => {
      const data = await pngOfSize(32 * 1024);
      const { res: created, url } = await createUpload(srv.url, data.length, { filename: 'live.png' });
      assert.equal(created.status, 201);
      const first = await patch(url, 0, data.subarray(0, 8192));
      assert.equal(first.status, 204);
      // The S3 bucket lock comes and goes with requests; everything else must stay.
      const upload = async () => {
        const l = await leftovers(srv);
        return { keys: l.keys.filter((k) => !k.includes('/_system/tus/locks/')), pending: l.pending };
      };
      const held = await upload();

      // A sweep that sees the upload's objects as older than its max age (a lagging expiry
      // sweep, clock skew between instances, a max age set below the expiry by hand).
      const swept = await sweepOnce({ storage: srv.storage, keyPrefix: srv.config.keyPrefix, maxAgeMs: HOUR, log: silent }, Date.now() + 2 * HOUR);
      assert.equal(swept.orphanFiles, 0);
      const after = await upload();
      assert.deepEqual(after.keys, held.keys);
      assert.equal(after.pending, held.pending);

      const offset = await offsetOf(url);
      assert.equal(offset, 8192);
      const done = await patch(url, offset, data.subarray(offset));
      assert.equal(done.status, 204, done.body.toString());
      const got = await call(`${srv.url}/v1/files/${String(done.headers['sluice-file-id'])}/content`);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(data));
    });
  });
}
