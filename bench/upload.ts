// npm run bench:upload — sluice vs a direct lib-storage upload to the same
// MinIO, side by side in one run, plus the service's peak RSS at 1 GiB, 5 GiB
// and with the S3 side throttled far below the client: with glibc's malloc,
// and again with the allocator the Docker image ships (jemalloc and its
// MALLOC_CONF, bench/lib/allocator.ts) where jemalloc is installed.
//
// Sizes are overridable for a quick look: BENCH_SIZE_MB (1024), BENCH_BIG_MB
// (5120), BENCH_RUNS (3), BENCH_THROTTLE_MB (256), BENCH_THROTTLE_MBPS (16).

import { Readable } from 'node:stream';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { request } from 'undici';
import { startMinio } from '../scripts/minio.ts';
import { startThrottleProxy } from './lib/throttle-proxy.ts';
import { payload } from './lib/payload.ts';
import { median, startService, type ServiceProcess } from './lib/service.ts';
import { imageAllocatorEnv } from './lib/allocator.ts';
import { sluiceS3Env } from './lib/harness.ts';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB;
const BIG = Number(process.env.BENCH_BIG_MB ?? 5120) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const THROTTLED = Number(process.env.BENCH_THROTTLE_MB ?? 256) * MiB;
const THROTTLE_RATE = Number(process.env.BENCH_THROTTLE_MBPS ?? 16) * MiB;
const PART = 8 * MiB;
const QUEUE = 4;

const minio = await startMinio();
const bucket = 'bench-upload';
const client = new S3Client({
  endpoint: minio.endpoint,
  region: minio.region,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
});
await client.send(new CreateBucketCommand({ Bucket: bucket }));

const serviceEnv = (endpoint: string, uploader = 'parts') => ({
  // The ingest path alone: the bench's PNG bodies would otherwise get default
  // thumbnail jobs, whose memory is bench:pool's subject, not this one's.
  SLUICE_JOBS_POOL_SIZE: '0',
  SLUICE_S3_UPLOADER: uploader,
  ...sluiceS3Env(minio, bucket, endpoint),
  SLUICE_S3_PART_SIZE: String(PART),
  SLUICE_S3_QUEUE_SIZE: String(QUEUE),
  SLUICE_MAX_FILE_BYTES: String(BIG + MiB),
});

async function viaSluice(svc: ServiceProcess, size: number): Promise<number> {
  const started = performance.now();
  const res = await request(`${svc.url}/v1/files/bench.png`, {
    method: 'PUT',
    body: Readable.from(payload(size)),
    headers: { 'content-length': String(size), 'content-type': 'image/png' },
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`sluice answered ${res.statusCode}: ${text}`);
  return (performance.now() - started) / 1000;
}

async function direct(size: number): Promise<number> {
  const started = performance.now();
  await new Upload({
    client,
    params: { Bucket: bucket, Key: 'direct/bench.png', Body: Readable.from(payload(size)), ContentType: 'image/png' },
    partSize: PART,
    queueSize: QUEUE,
  }).done();
  return (performance.now() - started) / 1000;
}

const mbps = (size: number, s: number) => size / MiB / s;
const out: string[] = [];
const log = (line: string) => {
  out.push(line);
  console.log(line);
};

try {
  log(`# bench:upload  size=${SIZE / MiB} MiB  runs=${RUNS}  part=${PART / MiB} MiB x queue ${QUEUE}  load=${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const svc = await startService(serviceEnv(minio.endpoint));
  const sluiceTimes: number[] = [];
  const directTimes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    if (i % 2 === 0) {
      sluiceTimes.push(await viaSluice(svc, SIZE));
      directTimes.push(await direct(SIZE));
    } else {
      directTimes.push(await direct(SIZE));
      sluiceTimes.push(await viaSluice(svc, SIZE));
    }
    log(`run ${i + 1}: sluice ${mbps(SIZE, sluiceTimes.at(-1)!).toFixed(0)} MB/s, direct lib-storage ${mbps(SIZE, directTimes.at(-1)!).toFixed(0)} MB/s`);
  }
  const rss1g = await svc.peakRssMb();
  await svc.stop();
  const ratio = median(directTimes) / median(sluiceTimes);
  log(`median: sluice ${mbps(SIZE, median(sluiceTimes)).toFixed(0)} MB/s, direct ${mbps(SIZE, median(directTimes)).toFixed(0)} MB/s, ratio ${ratio.toFixed(3)}`);
  log(`peak RSS of the service over ${RUNS} x ${SIZE / MiB} MiB uploads: ${rss1g} MiB`);

  // The same 1 GiB through lib-storage's Upload, for the memory comparison that motivated the part writer.
  const lib = await startService(serviceEnv(minio.endpoint, 'lib-storage'));
  const tLib = await viaSluice(lib, SIZE);
  const rssLib = await lib.peakRssMb();
  await lib.stop();
  log(`same ${SIZE / MiB} MiB with SLUICE_S3_UPLOADER=lib-storage: ${mbps(SIZE, tLib).toFixed(0)} MB/s, peak RSS ${rssLib} MiB`);

  const { port } = new URL(minio.endpoint);
  const proxy = await startThrottleProxy({ host: '127.0.0.1', port: Number(port) }, THROTTLE_RATE);
  /** Peak RSS of one upload of `size` on a fresh service. */
  const peakOf = async (label: string, size: number, endpoint: string, alloc: Record<string, string> = {}): Promise<number> => {
    const svc = await startService({ ...serviceEnv(endpoint), ...alloc });
    const t = await viaSluice(svc, size);
    const rss = await svc.peakRssMb();
    await svc.stop();
    log(`${label}: ${mbps(size, t).toFixed(1)} MB/s end to end, peak RSS ${rss} MiB`);
    return rss;
  };
  const slowEndpoint = `http://127.0.0.1:${proxy.port}`;
  const throttledLabel = `throttled S3 (${THROTTLE_RATE / MiB} MB/s cap), ${THROTTLED / MiB} MiB from a fast client`;
  const rss5g = await peakOf(`${BIG / MiB} MiB upload`, BIG, minio.endpoint);
  const rssThrottled = await peakOf(throttledLabel, THROTTLED, slowEndpoint);

  // The same three with the image's allocator: what a container of sluice holds.
  const image = imageAllocatorEnv();
  let imageKeys = '';
  if (image) {
    const i1 = await peakOf(`image allocator, ${SIZE / MiB} MiB upload`, SIZE, minio.endpoint, image);
    const i5 = await peakOf(`image allocator, ${BIG / MiB} MiB upload`, BIG, minio.endpoint, image);
    const it = await peakOf(`image allocator, ${throttledLabel}`, THROTTLED, slowEndpoint, image);
    imageKeys = ` rss_1g_image_mb=${i1} rss_5g_image_mb=${i5} rss_throttled_image_mb=${it}`;
  } else {
    log('jemalloc not installed (libjemalloc2): the image allocator rows are skipped');
  }
  await proxy.close();

  console.log(`RESULT upload ratio=${ratio.toFixed(3)} rss_1g_mb=${rss1g} rss_5g_mb=${rss5g} rss_throttled_mb=${rssThrottled}${imageKeys} rss_1g_lib_storage_mb=${rssLib} sluice_mbps=${mbps(SIZE, median(sluiceTimes)).toFixed(0)} direct_mbps=${mbps(SIZE, median(directTimes)).toFixed(0)}`);
} finally {
  client.destroy();
  await minio.stop();
}
