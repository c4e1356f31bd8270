// Completion webhook: once a file's jobs have all ended, its manifest is
// POSTed to the configured URL, signed with HMAC-SHA256 over timestamp and
// body, with the file id as idempotency key; a receiver that fails twice gets
// it on the third attempt, and the manifest records the delivery.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jpeg } from './helpers/http.ts';
import { markersLeft, startJobsServer, upload, waitForJobs, type JobsServer } from './helpers/jobs.ts';
import { startReceiver, verifySignature, type Receiver } from './helpers/webhook-receiver.ts';

const SECRET = 'test-webhook-secret-0123456789';

describe('completion webhook', () => {
  let receiver: Receiver;
  let srv: JobsServer;
  before(async () => {
    receiver = await startReceiver({ failFirst: 2 });
    srv = await startJobsServer({ env: { SLUICE_WEBHOOK_URL: receiver.url, SLUICE_WEBHOOK_SECRET: SECRET, SLUICE_WEBHOOK_BACKOFF_MS: '50' } });
  });
  after(async () => {
    await srv.close();
    await receiver.close();
  });

  it('retries a failing receiver with backoff and delivers a signed manifest once it recovers', async () => {
    const f = await upload(srv.url, 'a.jpg', await jpeg(), { process: 'thumbnail,webp' });
    const m = await waitForJobs(srv.url, f.id, { webhook: true });
    assert.equal(m.webhook!.state, 'delivered');
    assert.equal(m.webhook!.attempts, 3);
    assert.ok(m.webhook!.deliveredAt);
    assert.deepEqual(receiver.deliveries.map((d) => d.status), [500, 500, 200]);
    for (const d of receiver.deliveries) {
      assert.equal(d.headers['idempotency-key'], f.id);
      assert.equal(d.headers['content-type'], 'application/json');
      assert.ok(verifySignature(SECRET, d.headers['x-sluice-signature'], d.body), 'signature verifies');
      assert.ok(!verifySignature('another-secret-0123456789', d.headers['x-sluice-signature'], d.body), 'a wrong secret does not');
      assert.ok(!verifySignature(SECRET, d.headers['x-sluice-signature'], d.body.replace('a.jpg', 'b.jpg')), 'a changed body does not');
    }
    const sent = JSON.parse(receiver.deliveries[2]!.body) as { event: string; file: typeof m };
    assert.equal(sent.event, 'file.processed');
    assert.equal(sent.file.id, f.id);
    assert.equal(sent.file.jobs!.thumbnail!.state, 'done');
    assert.equal(sent.file.jobs!.webp!.state, 'done');
    // Every attempt sent the same bytes (the delivery record is not part of the body).
    assert.equal(new Set(receiver.deliveries.map((d) => d.body)).size, 1);
    // Delivered: the outbox marker is gone.
    assert.deepEqual(await markersLeft(srv), []);
  });

  it('delivers for a file without jobs too', async () => {
    const before = receiver.deliveries.length;
    const f = await upload(srv.url, 'b.jpg', await jpeg(), { process: 'none' });
    const m = await waitForJobs(srv.url, f.id, { webhook: true });
    assert.equal(m.webhook!.state, 'delivered');
    assert.equal(m.webhook!.attempts, 1);
    assert.equal(receiver.deliveries.length, before + 1);
  });
});
