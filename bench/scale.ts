// bench:scale — the processing tier apart from ingest (issue 11): thumbnails/s
// with one and with two worker processes fed by one ingest node through
// BullMQ, CPU seconds per job, and the ingest node's /health p99 while the
// workers are saturated, against /health p99 of one role-`all` node (ingest
// and pool in one process) doing the same work.
//
//   npm run bench:scale -- [--files 60] [--pool 1] [--width 2400] [--backend s3|fs]
//
// MinIO and redis-server are started for the run. Every phase uploads the
// same `files` images with process=thumbnail at once, then waits for the
// workers' `job done` log lines; /health is polled every 20 ms meanwhile, and its
// p99 reported for the window after the last upload, while the workers work off
// the backlog (the uploads' own cost on the ingest node is printed apart).

import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { startRedis } from '../scripts/redis.ts';
import type { ChildServer } from '../test/helpers/child-server.ts';
import { startNodes } from '../test/helpers/nodes.ts';
import { arg, BENCH_ENV, loadNote, percentile, s3ForBench } from './lib/harness.ts';
import { processCpuS } from './lib/proc-stats.ts';

const files = Number(arg('files', '60'));
const pool = arg('pool', '1');
const width = Number(arg('width', '2400'));
const backend = arg('backend', 's3');

const minio = await s3ForBench(backend);
const redis = await startRedis();
const image = await sharp({ create: { width, height: Math.round((width * 3) / 4), channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } } })
  .jpeg({ quality: 90 })
  .toBuffer();
console.log(`bench:scale ${backend} backend, ${files} JPEGs of ${width}px (${(image.length / 1024).toFixed(0)} KiB) → thumbnail, pool ${pool} thread(s) per node, ${availableParallelism()} cores; ${await loadNote()}`);

interface Phase {
  jobsPerS: number;
  cpuPerJobMs: number;
  healthP99: number;
  healthSamples: number;
}

async function phase(label: string, roles: ('ingest' | 'worker' | 'all')[]): Promise<Phase> {
  const env = {
    ...BENCH_ENV,
    SLUICE_REDIS_URL: redis.url,
    // Each phase its own keys: nothing of an earlier phase is left to count.
    SLUICE_REDIS_PREFIX: `scale-${label}`,
    SLUICE_JOBS_POOL_SIZE: pool,
    SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0',
  };
  const cluster = await startNodes(`scale-${label}`, env, roles);
  try {
    const front = cluster.nodes[0]!;
    const workers = cluster.nodes.filter((_n, i) => roles[i] !== 'ingest');
    const done = () => workers.reduce((n, w) => n + w.logs.filter((l) => l.msg === 'job done').length, 0);
    const allDone = Promise.race(workers.map((w: ChildServer) => w.waitForLog(() => done() >= files, 600_000)));
    const cpu0 = await Promise.all(workers.map((w) => processCpuS(w.proc.pid!)));

    const healthAgent = new Agent({ connections: 1 });
    // Two windows: while the uploads come in (the ingest node's own work), and after the last
    // upload while the workers are still saturated with the backlog: the goal is about the second.
    const health: number[] = [];
    const healthUploading: number[] = [];
    let uploading = true;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t = performance.now();
        const res = await request(`${front.url}/health`, { dispatcher: healthAgent });
        await res.body.dump();
        (uploading ? healthUploading : health).push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const uploadAgent = new Agent({ connections: 4 });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < files) {
          next++;
          const res = await request(`${front.url}/v1/files/img.jpg?process=thumbnail`, { method: 'PUT', body: image, dispatcher: uploadAgent, headers: { 'content-type': 'image/jpeg' } });
          await res.body.dump();
          if (res.statusCode !== 201) throw new Error(`upload answered ${res.statusCode}`);
        }
      }),
    );
    uploading = false;
    await allDone;
    const wall = (performance.now() - t0) / 1000;
    polling = false;
    await poller;
    const cpu1 = await Promise.all(workers.map((w) => processCpuS(w.proc.pid!)));
    const cpu = cpu1.reduce((s, c, i) => s + c - cpu0[i]!, 0);
    await Promise.all([healthAgent.close(), uploadAgent.close()]);
    const r = { jobsPerS: files / wall, cpuPerJobMs: (cpu / files) * 1000, healthP99: percentile(health, 99), healthSamples: health.length };
    console.log(
      `${label.padEnd(10)} ${r.jobsPerS.toFixed(1)} thumbnails/s  wall ${wall.toFixed(1)} s  CPU per job ${r.cpuPerJobMs.toFixed(0)} ms (worker processes)  ` +
        `/health of ${roles[0]} node, workers saturated: samples=${health.length} p50=${percentile(health, 50).toFixed(1)} ms p99=${r.healthP99.toFixed(1)} ms max=${Math.max(...health).toFixed(1)} ms; ` +
        `while uploading: samples=${healthUploading.length} p99=${percentile(healthUploading, 99).toFixed(1)} ms`,
    );
    return r;
  } finally {
    await cluster.cleanup();
  }
}

let one: Phase, two: Phase, all: Phase;
try {
  one = await phase('workers-1', ['ingest', 'worker']);
  two = await phase('workers-2', ['ingest', 'worker', 'worker']);
  all = await phase('all', ['all']);
} finally {
  await redis.stop();
  await minio?.stop();
}
console.log(`after: ${await loadNote()}`);
console.log(
  `RESULT scale jobs_1=${one.jobsPerS.toFixed(1)} jobs_2=${two.jobsPerS.toFixed(1)} jobs_all=${all.jobsPerS.toFixed(1)} cpu_per_job_ms=${one.cpuPerJobMs.toFixed(0)} ingest_health_p99_ms=${two.healthP99.toFixed(1)} all_health_p99_ms=${all.healthP99.toFixed(1)}`,
);
