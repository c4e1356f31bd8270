// Crash safety: the real server, SIGKILLed while jobs are pending or running,
// leaves a marker per unfinished file; the next start finds them (without
// listing the files themselves), finishes every job and delivers the webhook.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Manifest } from '../src/core/manifest.ts';
import { call, type UploadedFile } from './helpers/http.ts';
import { spawnServer } from './helpers/jobs-child-server.ts';
import { waitForJobs } from './helpers/jobs.ts';
import { startReceiver, type Receiver } from './helpers/webhook-receiver.ts';
import { until } from './helpers/wait.ts';

const SECRET = 'crash-test-secret-0123456789';

/** A noisy photo-sized JPEG: seconds of AVIF work on one thread. */
async function heavyJpeg(seed: number): Promise<Buffer> {
  const w = 1600;
  const raw = Buffer.alloc(w * w * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = ((i + seed) * 2654435761) >>> 24;
  return sharp(raw, { raw: { width: w, height: w, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

describe('crash recovery', () => {
  let dataDir: string;
  let receiver: Receiver;
  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-crash-'));
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('finishes the jobs of a SIGKILLed server on the next start', async () => {
    const env = {
      SLUICE_STORAGE: 'fs',
      SLUICE_DATA_DIR: dataDir,
      SLUICE_JOBS_POOL_SIZE: '1',
      SLUICE_WEBHOOK_URL: receiver.url,
      SLUICE_WEBHOOK_SECRET: SECRET,
      SLUICE_WEBHOOK_BACKOFF_MS: '50',
    };
    const first = await spawnServer(env);
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const res = await call(`${first.url}/v1/files/photo-${i}.jpg?process=avif,webp,thumbnail`, { method: 'PUT', body: await heavyJpeg(i) });
        assert.equal(res.status, 201, res.body.toString());
        ids.push(res.json<{ files: UploadedFile[] }>().files[0]!.id);
      }
    } finally {
      first.child.kill('SIGKILL');
    }
    assert.equal((await first.exited).signal, 'SIGKILL');

    // What the crash left: a marker for every file not finished, and those manifests say so.
    const markerDir = path.join(dataDir, 'sluice', '_system', 'jobs', 'default');
    const markers: string[] = await readdir(markerDir).catch(() => []);
    const unfinished: string[] = [];
    for (const id of ids) {
      const m = JSON.parse(await readFile(path.join(dataDir, 'sluice', 'default', id, 'manifest.json'), 'utf8')) as Manifest;
      if (Object.values(m.jobs!).some((j) => j.state === 'pending' || j.state === 'running') || m.webhook?.state !== 'delivered') unfinished.push(id);
    }
    assert.ok(unfinished.length >= 2, `the kill interrupted work (unfinished: ${unfinished.length})`);
    for (const id of unfinished) assert.ok(markers.includes(id), `marker for ${id}`);

    const second = await spawnServer(env);
    try {
      for (const id of ids) {
        const m = await waitForJobs(second.url, id, { webhook: true });
        for (const [name, job] of Object.entries(m.jobs!)) {
          assert.equal(job.state, 'done', `${id} ${name}: ${JSON.stringify(job)}`);
          assert.ok(job.attempts >= 1 && job.attempts <= 2, `${name} attempts ${job.attempts}`);
          assert.equal((await call(`${second.url}/v1/files/${id}/variants/${name}`, { method: 'HEAD' })).status, 200);
        }
        assert.equal(m.webhook!.state, 'delivered');
      }
      // At least once, keyed for deduplication: every file's manifest reached the receiver.
      const delivered = new Set(receiver.deliveries.filter((d) => d.status === 200).map((d) => d.headers['idempotency-key']));
      for (const id of ids) assert.ok(delivered.has(id), `webhook for ${id}`);
      // The index of unfinished work is empty again.
      await until(async () => (await readdir(markerDir).catch((): string[] => [])).length === 0, 'the marker index to empty').catch(() => {});
      assert.deepEqual(await readdir(markerDir).catch((): string[] => []), []);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
