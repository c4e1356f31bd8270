// Pool behaviour: a full queue never fails an upload (the work waits in
// storage and a rescan picks it up); close() with a short grace leaves
// unfinished jobs pending for the next start; a job over its time limit fails
// with JOB_TIMEOUT and leaves no partial output.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { loadConfig } from '../src/config.ts';
import { readManifest } from '../src/core/files.ts';
import { JobService } from '../src/jobs/service.ts';
import { createLogger } from '../src/logger.ts';
import { createStorage } from '../src/storage/index.ts';
import { startJobsServer, upload, waitForJobs } from './helpers/jobs.ts';
import { leftovers } from './helpers/server.ts';

async function noisyJpeg(w: number): Promise<Buffer> {
  const raw = Buffer.alloc(w * w * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width: w, height: w, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

describe('job pool', () => {
  it('accepts uploads past a full queue and finishes their jobs from storage', async () => {
    const srv = await startJobsServer({ env: { SLUICE_JOBS_POOL_SIZE: '1', SLUICE_JOBS_QUEUE_MAX: '1', SLUICE_JOBS_RESCAN_MS: '1000' } });
    try {
      const img = await noisyJpeg(600);
      // 8 at once against a queue of 1 and 2 processing slots: some must wait in storage.
      const files = await Promise.all(Array.from({ length: 8 }, (_, i) => upload(srv.url, `q${i}.jpg`, img, { process: 'thumbnail,webp' })));
      assert.ok(srv.jobs.stats().deferred > 0, 'the queue overflowed');
      for (const f of files) {
        const m = await waitForJobs(srv.url, f.id);
        assert.equal(m.jobs!.thumbnail!.state, 'done');
        assert.equal(m.jobs!.webp!.state, 'done');
      }
      const stats = srv.jobs.stats();
      assert.equal(stats.poolSize, 1);
      assert.equal(stats.queueDepth, 0);
      assert.equal(stats.completed, 16);
    } finally {
      await srv.close();
    }
  });

  it('close() leaves unfinished jobs pending, and the next start finishes them', async () => {
    const srv = await startJobsServer({ env: { SLUICE_JOBS_POOL_SIZE: '1' } });
    const big = await noisyJpeg(1600);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(srv.url, `s${i}.jpg`, big, { process: 'avif,webp' })).id);
    await srv.jobs.close(0);
    const states = await Promise.all(ids.map(async (id) => readManifest(srv.storage, srv.config.keyPrefix, 'default', id)));
    const unfinished = states.filter((m) => Object.values(m.jobs!).some((j) => j.state === 'pending' || j.state === 'running'));
    assert.ok(unfinished.length >= 1, 'work was left');
    // A new service on the same storage (a restart) picks it up from the markers.
    const config = loadConfig({ SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: srv.dataDir!, SLUICE_JOBS_POOL_SIZE: '1', LOG_LEVEL: 'silent' });
    const storage = await createStorage(config);
    const again = await JobService.create({ config, storage, log: createLogger(config) });
    await again.start();
    try {
      for (const id of ids) {
        for (let t = 0; ; t++) {
          const m = await readManifest(storage, config.keyPrefix, 'default', id);
          if (Object.values(m.jobs!).every((j) => j.state === 'done')) break;
          assert.ok(t < 600, `jobs of ${id} finished: ${JSON.stringify(m.jobs)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      await again.close(5_000);
      await srv.close();
    }
  });

  it('fails a job over its time limit with JOB_TIMEOUT and keeps no partial output', async () => {
    const srv = await startJobsServer({ env: { SLUICE_JOBS_POOL_SIZE: '1', SLUICE_JOBS_TIMEOUT_MS: '1000', SLUICE_JOBS_MAX_ATTEMPTS: '1', SLUICE_IMAGE_MAX_PIXELS: '100000000' } });
    try {
      const f = await upload(srv.url, 'huge.jpg', await noisyJpeg(4000), { process: 'avif' });
      const m = await waitForJobs(srv.url, f.id);
      assert.equal(m.jobs!.avif!.state, 'failed', JSON.stringify(m.jobs));
      assert.equal(m.jobs!.avif!.error!.code, 'JOB_TIMEOUT', JSON.stringify(m.jobs!.avif));
      const { keys } = await leftovers(srv as never);
      assert.deepEqual(keys.filter((k) => k.includes('/variants/')), []);
    } finally {
      await srv.close();
    }
  });
});
