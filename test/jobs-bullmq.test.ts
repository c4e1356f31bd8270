// Jobs through BullMQ: an ingest node enqueues, worker nodes run the
// pool, all real processes on one Redis and one bucket.
// - a committed image gets its thumbnail from the worker, recorded once;
// - SIGKILL of the worker mid-job: its lock expires, BullMQ's stalled check
//   puts the job back, a second worker finishes it; the manifest has one
//   record of it and the webhook arrives with one idempotency key;
// - Redis killed and restarted empty mid-run: uploads still commit, and the
//   reconcile from the markers gets every job of every file done.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import type { ChildServer } from './helpers/child-server.ts';
import { call, jpeg } from './helpers/http.ts';
import { upload, waitForJobs, type FileJson } from './helpers/jobs.ts';
import { startNodes, type Nodes } from './helpers/nodes.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';

/** Short, so a killed worker's job is back in the queue about two seconds after the kill. */
const LOCK_MS = 1000;

/** Noise does not compress: decoding and resizing this takes the pool a while, long enough to kill it mid-job. */
function largePng(seed: number): Promise<Buffer> {
  return sharp({ create: { width: 3000, height: 3000, channels: 3, background: { r: seed % 256, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

const started = (id: string) => (l: Record<string, unknown>) => l.msg === 'job started' && l.fileId === id;

describe('jobs through BullMQ: one ingest node, worker nodes', { timeout: 240_000 }, () => {
  let redis: RedisServer;
  let receiver: Receiver;
  let cluster: Nodes;
  let ingest: ChildServer;
  let worker: ChildServer;
  const workerEnv = { SLUICE_ROLE: 'worker', SLUICE_JOBS_POOL_SIZE: '1' };

  before(async () => {
    redis = await startRedis();
    receiver = await startReceiver();
    cluster = await startNodes(
      'jobs-bullmq',
      {
        SLUICE_REDIS_URL: redis.url,
        SLUICE_JOBS_POOL_SIZE: '1',
        SLUICE_JOBS_LOCK_MS: String(LOCK_MS),
        SLUICE_JOBS_RESCAN_MS: '1000',
        SLUICE_WEBHOOK_URL: receiver.url,
        SLUICE_WEBHOOK_SECRET: 'test-webhook-secret-0123456789',
        SLUICE_WEBHOOK_BACKOFF_MS: '50',
      },
      ['ingest'],
    );
    ingest = cluster.nodes[0]!;
    worker = await cluster.add(workerEnv);
  });
  after(async () => {
    await cluster?.cleanup();
    await receiver?.close();
    await redis?.stop();
  });

  test('a committed image gets its thumbnail from the worker node, recorded once', async () => {
    const f = await upload(ingest.url, 'a.jpg', await jpeg(), { process: 'thumbnail' });
    const m = await waitForJobs(ingest.url, f.id, { webhook: true });
    assert.equal(m.jobs!.thumbnail!.state, 'done');
    assert.equal(m.jobs!.thumbnail!.attempts, 1);
    assert.equal(m.webhook!.state, 'delivered');
    assert.equal((await call(`${ingest.url}/v1/files/${f.id}/variants/thumbnail`)).status, 200);
    // The worker ran it; the ingest node runs no pool.
    assert.equal(worker.logs.filter((l) => l.msg === 'job done' && l.fileId === f.id).length, 1);
    assert.equal(ingest.logs.filter((l) => l.msg === 'job started').length, 0);
    assert.deepEqual(receiver.deliveries.filter((d) => d.headers['idempotency-key'] === f.id).length, 1);
    // A worker node serves probes and metrics only.
    assert.equal((await call(`${worker.url}/v1/files`)).status, 404);
    assert.equal((await call(`${worker.url}/ready`)).status, 200);
    const metrics = (await call(`${worker.url}/metrics`)).body.toString();
    assert.match(metrics, /sluice_queue_jobs\{queue="jobs",state="waiting"\} \d+/);
    assert.match(metrics, /sluice_queue_jobs\{queue="jobs",state="stalled"\} \d+/);
  });

  test('SIGKILL of the worker mid-job: a second worker finishes it, recorded once, one idempotency key', async () => {
    // Kill the worker once it has started the job; a job that beat the kill proves nothing, so try again with a new file.
    let f: FileJson | undefined;
    for (let i = 0; i < 5 && !f; i++) {
      const u = await upload(ingest.url, `big-${i}.png`, await largePng(i), { process: 'thumbnail' });
      await worker.waitForLog(started(u.id));
      worker.proc.kill('SIGKILL');
      await worker.exited;
      const now = (await call(`${ingest.url}/v1/files/${u.id}`)).json<FileJson>();
      if (now.jobs!.thumbnail!.state === 'running') f = u;
      else worker = await cluster.add(workerEnv); // it finished first: a fresh worker, and again
    }
    assert.ok(f, 'the worker was killed mid-job in one of five tries');
    const second = await cluster.add(workerEnv);
    worker = second;
    const m = await waitForJobs(ingest.url, f.id, { webhook: true });
    assert.equal(m.jobs!.thumbnail!.state, 'done');
    // One record, two attempts: the killed one (counted before it ran) and the second worker's.
    assert.deepEqual(Object.keys(m.jobs!), ['thumbnail']);
    assert.equal(m.jobs!.thumbnail!.attempts, 2);
    await second.waitForLog((l) => l.msg === 'job done' && l.fileId === f.id);
    await second.waitForLog((l) => l.msg === 'job stalled (its worker stopped renewing the lock); back in the queue');
    assert.equal(m.webhook!.state, 'delivered');
    const hooks = receiver.deliveries.filter((d) => d.headers['idempotency-key'] === f.id);
    assert.ok(hooks.length >= 1);
    assert.equal(new Set(hooks.map((d) => d.headers['idempotency-key'])).size, 1);
  });

  test('Redis killed and restarted empty mid-run: every job of every committed file is done once it is back', async () => {
    const img = await jpeg();
    const before = await Promise.all([0, 1, 2].map((i) => upload(ingest.url, `before-${i}.jpg`, img, { process: 'thumbnail,webp' })));
    await redis.kill();
    // Uploads still commit while Redis is down; the markers hold their jobs.
    const during = await Promise.all([0, 1, 2].map((i) => upload(ingest.url, `during-${i}.jpg`, img, { process: 'thumbnail,webp' })));
    assert.equal((await call(`${ingest.url}/ready`)).status, 503);
    await redis.restart();
    for (const f of [...before, ...during]) {
      const m = await waitForJobs(ingest.url, f.id, { webhook: true });
      assert.equal(m.jobs!.thumbnail!.state, 'done', JSON.stringify(m.jobs));
      assert.equal(m.jobs!.webp!.state, 'done', JSON.stringify(m.jobs));
      assert.equal(m.webhook!.state, 'delivered');
    }
  });
});
