// npm run bench:idle-rss — resident memory of an idle server, per configuration,
// and the share of it each optional module costs (issue 12, "memory").
//
// 1. Modules: a fresh Node (with --expose-gc) first loads what every
//    configuration loads (fastify, pino, zod, prom-client, file-type, busboy),
//    then one optional group; its RSS after a full GC minus that of the base
//    process is the group's share. Shared dependencies are counted once, in the
//    base, so the shares add up to no more than a configuration pays.
// 2. Configurations: the real server (dist/, as `npm start` runs it) started per
//    configuration, read from /proc (VmRSS) once /ready answers and one second
//    has passed; the median of BENCH_RUNS starts (default 3).
//
// Prints a table and, last, one line:
//   RESULT idle-rss fs_minimal_mb=… fs_default_mb=… s3_default_mb=… ingest_redis_mb=… worker_redis_mb=… tus_mb=… …

import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startMinio } from '../scripts/minio.ts';
import { startRedis } from '../scripts/redis.ts';
import { BENCH_ENV, loadNote, median, procMemMiB, sluiceS3Env } from './lib/harness.ts';
import { startService } from './lib/service.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** What every configuration loads anyway. */
const BASE = ['fastify', 'pino', 'zod', 'prom-client', 'file-type', 'busboy'];
/** The optional groups, as src/ loads them only when a configuration uses them. */
const GROUPS: Record<string, string[]> = {
  tus: ['@tus/server', '@tus/s3-store', '@tus/file-store', '@tus/utils'],
  swagger: ['@fastify/swagger'],
  aws: ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'],
  sharp: ['sharp'],
  piscina: ['piscina'],
  ioredis: ['ioredis'],
  bullmq: ['bullmq'],
};

const CHILD = fileURLToPath(new URL('./lib/import-rss.ts', import.meta.url));
const mib1 = (kib: number) => Math.round((kib / 1024) * 10) / 10;

/** RSS in KiB of a fresh Node that loaded BASE plus `modules`. */
function childRssKiB(modules: string[]): number {
  const out = spawnSync(process.execPath, ['--expose-gc', CHILD, ...BASE, ...modules], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
  return Number(out.stdout.trim());
}

function moduleShares(): Record<string, number> {
  const runs = Math.max(RUNS, 5);
  const base = median(Array.from({ length: runs }, () => childRssKiB([])));
  const shares: Record<string, number> = { base: mib1(base) };
  for (const [name, mods] of Object.entries(GROUPS)) {
    shares[name] = Math.max(0, mib1(median(Array.from({ length: runs }, () => childRssKiB(mods))) - base));
  }
  return shares;
}

async function idleRss(env: Record<string, string>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const svc = await startService({ ...BENCH_ENV, LOG_LEVEL: 'error', ...env });
    try {
      for (;;) {
        const res = await fetch(`${svc.url}/ready`);
        await res.body?.cancel();
        if (res.ok) break;
        await sleep(100);
      }
      await sleep(1000);
      samples.push(await procMemMiB(svc.child.pid!, 'VmRSS'));
    } finally {
      await svc.stop();
    }
  }
  return median(samples);
}

const minio = await startMinio();
const redis = await startRedis();
try {
  const bucket = 'bench-idle-rss';
  await new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  }).send(new CreateBucketCommand({ Bucket: bucket }));
  const s3 = sluiceS3Env(minio, bucket);
  const dataDir = `/tmp/sluice-idle-rss-${process.pid}`;
  const configs: [string, string, Record<string, string>][] = [
    ['fs_minimal', 'fs, jobs off (SLUICE_JOBS_POOL_SIZE=0), SLUICE_DOCS=false', { SLUICE_DATA_DIR: dataDir, SLUICE_JOBS_POOL_SIZE: '0', SLUICE_DOCS: 'false' }],
    ['fs_default', 'fs, defaults (jobs on, /docs on)', { SLUICE_DATA_DIR: dataDir }],
    ['s3_nojobs', 's3, jobs off', { ...s3, SLUICE_JOBS_POOL_SIZE: '0' }],
    ['s3_default', 's3, defaults', s3],
    ['ingest_redis', 's3 + Redis, SLUICE_ROLE=ingest', { ...s3, SLUICE_REDIS_URL: redis.url, SLUICE_ROLE: 'ingest' }],
    ['worker_redis', 's3 + Redis, SLUICE_ROLE=worker', { ...s3, SLUICE_REDIS_URL: redis.url, SLUICE_ROLE: 'worker' }],
  ];
  const rss: Record<string, number> = {};
  console.log('| configuration | idle RSS (MiB) |\n|---|---|');
  for (const [key, label, env] of configs) {
    rss[key] = await idleRss(env);
    console.log(`| ${label} | ${rss[key]} |`);
  }
  const shares = moduleShares();
  console.log(`\n| module group (on top of ${BASE.join(', ')}: ${shares.base} MiB) | RSS share (MiB) |\n|---|---|`);
  for (const name of Object.keys(GROUPS)) console.log(`| ${name}: ${GROUPS[name]!.join(', ')} | ${shares[name]} |`);
  console.log(`\n${await loadNote()}`);
  const fields = [...Object.entries(rss).map(([k, v]) => `${k}_mb=${v}`), ...Object.keys(GROUPS).map((k) => `${k}_mb=${shares[k]}`)];
  console.log(`RESULT idle-rss ${fields.join(' ')}`);
} finally {
  await redis.stop();
  await minio.stop();
}
