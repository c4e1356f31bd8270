// npm run bench:pool — what the worker pool costs and what it buys.
//
// 1. Pool overhead: thumbnails/s through the piscina pool (input bytes shared
//    with the worker, output transferred back: no copies) against a plain
//    sharp loop in this process, same images, same resize code, same number in
//    flight, alternating round by round.
// 2. Responsiveness: the real service (fs storage in a temp dir) with its pool
//    saturated by image jobs while a separate load process probes GET /health
//    and streams uploads; event-loop delay measured in the server process.
//    Contrast: the same thumbnails done on the main thread (sharp in-process).
// 3. Upload throughput with a saturated pool / with an idle one.
//
// Sizes: BENCH_IMAGES (8 distinct inputs), BENCH_BACKLOG (images queued per saturated window), BENCH_THUMBS (48 per round),
// BENCH_RUNS (3), BENCH_SECONDS (8 per scenario), BENCH_UPLOAD_MB (8),
// BENCH_POOL (pool threads and in-flight count; default: the service's default).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { request } from 'undici';
import { buildApp, defaultDeps } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { JobService } from '../src/jobs/service.ts';
import { IMAGE_WORKER } from '../src/jobs/tasks.ts';
import { createLogger } from '../src/logger.ts';
import { createStorage } from '../src/storage/index.ts';
import { transformer } from '../workers/image.ts';
import type { ImageTask, TaskResult } from '../workers/tasks.ts';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 8);
const THUMBS = Number(process.env.BENCH_THUMBS ?? 48);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const UPLOAD_MB = Number(process.env.BENCH_UPLOAD_MB ?? 8);
// The service's own default (cores - 1, at least 1): what a deployment gets without tuning.
const POOL = Number(process.env.BENCH_POOL ?? loadConfig({}).jobs.poolSize);
const LOAD = fileURLToPath(new URL('./pool-load.ts', import.meta.url));

const log = (s: string) => console.log(s);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const limits: ImageTask['limits'] = { maxPixels: 40_000_000, failOn: 'error', sharpConcurrency: 1, timeoutMs: 60_000 };

/** A photo-like 2400×1600 JPEG: smooth gradients plus grain, so decode and resize do real work. */
async function photo(seed: number): Promise<Buffer> {
  const w = 2400;
  const h = 1600;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const grain = ((i + seed * 7919) * 2654435761) >>> 28;
      raw[i] = (x * 255) / w + grain;
      raw[i + 1] = (y * 255) / h + grain;
      raw[i + 2] = ((x + y + seed * 50) % 255) + grain;
    }
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 88 }).toBuffer();
}

/** Copy once into shared memory: every task then passes a view, never a copy. */
function shared(buf: Buffer): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(buf.length));
  view.set(buf);
  return view;
}

async function inFlight<T>(n: number, total: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < total) await fn(next++);
  }));
}

const thumbTask = (bytes: Uint8Array): ImageTask => ({ storage: { kind: 'fs', dataDir: '/nonexistent' }, input: { bytes }, format: 'webp', size: 256, limits });

async function plainLoop(images: Uint8Array[], total: number, n: number): Promise<number> {
  const t = performance.now();
  await inFlight(n, total, async (i) => {
    const out = await transformer(thumbTask(images[i % images.length]!), Buffer.from(images[i % images.length]!.buffer)).toBuffer();
    if (out.length === 0) throw new Error('empty thumbnail');
  });
  return total / ((performance.now() - t) / 1000);
}

async function throughPool(pool: Piscina, images: Uint8Array[], total: number, n: number): Promise<number> {
  const t = performance.now();
  await inFlight(n, total, async (i) => {
    const r = (await pool.run(thumbTask(images[i % images.length]!))) as TaskResult;
    if (!r.ok || !r.bytes || r.bytes.byteLength === 0) throw new Error(`pool thumbnail failed: ${JSON.stringify(r.ok ? {} : r.error)}`);
  });
  return total / ((performance.now() - t) / 1000);
}

function runLoad(url: string, seconds: number): Promise<{ healthP50: number; healthP99: number; probes: number; uploadMBps: number; uploadedMB: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD, url, String(seconds * 1000), String(UPLOAD_MB * 1024 * 1024), '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`))));
  });
}

log(`bench:pool  node ${process.version}  cores ${navigator.hardwareConcurrency}  load ${loadavg().map((l) => l.toFixed(2)).join(' ')}  UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}  sharp.concurrency=${sharp.concurrency()}`);
log(`inputs: ${IMAGES} photo-like 2400x1600 JPEGs; ${THUMBS} 256 px WebP thumbnails per round; ${POOL} in flight; ${RUNS} rounds`);
const jpegs = await Promise.all(Array.from({ length: IMAGES }, (_, i) => photo(i)));
const images = jpegs.map(shared);
sharp.cache(false);
sharp.concurrency(1);

// --- 1. pool overhead ---
const pool = new Piscina({ filename: IMAGE_WORKER, minThreads: POOL, maxThreads: POOL });
await throughPool(pool, images, POOL * 2, POOL); // warm the threads and sharp in each
await plainLoop(images, POOL * 2, POOL);
const plainRates: number[] = [];
const poolRates: number[] = [];
for (let r = 0; r < RUNS; r++) {
  plainRates.push(await plainLoop(images, THUMBS, POOL));
  poolRates.push(await throughPool(pool, images, THUMBS, POOL));
  log(`  round ${r + 1}: plain ${plainRates.at(-1)!.toFixed(1)}/s  pool ${poolRates.at(-1)!.toFixed(1)}/s`);
}
await pool.destroy();
const thumbsRatio = median(poolRates) / median(plainRates);
log(`thumbnails/s median: plain sharp loop ${median(plainRates).toFixed(1)}, pool ${median(poolRates).toFixed(1)}, ratio ${thumbsRatio.toFixed(3)}`);

// --- 2 + 3. the service under load ---
const dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-pool-'));
const config = loadConfig({ SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir, LOG_LEVEL: 'warn', SLUICE_JOBS_POOL_SIZE: String(POOL), SLUICE_JOBS_RESCAN_MS: '600000' });
const storage = await createStorage(config);
const base = await defaultDeps(config, storage, createLogger(config));
const jobs = await JobService.create({ config, storage, log: base.log });
await jobs.start();
const app = await buildApp({ ...base, jobs });
await app.listen({ port: 0, host: '127.0.0.1' });
const addr = app.server.address();
if (!addr || typeof addr === 'string') throw new Error('no address');
const url = `http://127.0.0.1:${addr.port}`;

interface Scenario {
  healthP99: number;
  eldP99: number;
  uploadMBps: number;
  saturated: number;
}

async function scenario(label: string, background: (stop: AbortSignal) => Promise<void>, prepare?: () => Promise<void>): Promise<Scenario> {
  await prepare?.();
  const stop = new AbortController();
  const bg = background(stop.signal);
  await new Promise((r) => setTimeout(r, 300)); // let the background work ramp up
  const eld = monitorEventLoopDelay({ resolution: 1 });
  let samples = 0;
  let busy = 0;
  const sampler = setInterval(() => {
    samples++;
    if (jobs.stats().running >= POOL) busy++;
  }, 100);
  eld.enable();
  const load = await runLoad(url, SECONDS);
  eld.disable();
  clearInterval(sampler);
  stop.abort();
  await bg;
  const s = { healthP99: load.healthP99, eldP99: eld.percentile(99) / 1e6, uploadMBps: load.uploadMBps, saturated: busy / samples };
  const q = (p: number) => (eld.percentile(p) / 1e6).toFixed(1);
  log(`  ${label.padEnd(34)} eld distribution ms: p50 ${q(50)} p90 ${q(90)} p99 ${q(99)} p99.9 ${q(99.9)} max ${(eld.max / 1e6).toFixed(1)} (${eld.count} samples)`);
  log(`  ${label.padEnd(34)} health p50 ${load.healthP50.toFixed(1)} ms p99 ${s.healthP99.toFixed(1)} ms  eld p99 ${s.eldP99.toFixed(2)} ms  uploads ${s.uploadMBps.toFixed(1)} MB/s  pool busy ${(s.saturated * 100).toFixed(0)}% of samples`);
  return s;
}

/**
 * Saturate the pool with a backlog of images queued *before* the window, so
 * the window measures the service with a busy pool, not this process acting
 * as a client (the load process is the only client during the window).
 */
async function queueBacklog(): Promise<void> {
  const backlog = Number(process.env.BENCH_BACKLOG ?? 2 * SECONDS * POOL + 4);
  for (let n = 0; n < backlog; n++) {
    const res = await request(`${url}/v1/files/photo-${n}.jpg?process=thumbnail,preview,webp`, { method: 'PUT', body: jpegs[n % jpegs.length]! });
    await res.body.dump();
  }
}

/** The same image work on the main thread (sharp in this process, POOL in flight). */
async function mainThreadWork(stop: AbortSignal): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: POOL }, async () => {
    while (!stop.aborted) {
      const input = Buffer.from(images[i++ % images.length]!.buffer);
      for (const [size, format] of [[256, 'webp'], [1024, 'webp'], [undefined, 'webp']] as const) {
        await transformer({ format, ...(size ? { size } : {}), limits }, input).toBuffer();
      }
    }
  }));
}

const idle: Scenario[] = [];
const saturated: Scenario[] = [];
const mainThread: Scenario[] = [];
for (let r = 0; r < RUNS; r++) {
  log(`round ${r + 1}:`);
  idle.push(await scenario('idle pool', async () => {}));
  saturated.push(await scenario('saturated pool', async () => {}, queueBacklog));
  // Drain what the saturation left queued, so the next scenario starts clean.
  while (jobs.stats().queueDepth + jobs.stats().activeFiles > 0) await new Promise((res) => setTimeout(res, 100));
  mainThread.push(await scenario('same work on the main thread', mainThreadWork));
}
await app.close();
await jobs.close(10_000);
await storage.close();
await rm(dataDir, { recursive: true, force: true });

const m = (xs: Scenario[], k: keyof Scenario) => median(xs.map((x) => x[k]));
const uploadRatio = m(saturated, 'uploadMBps') / m(idle, 'uploadMBps');
log('');
log(`medians of ${RUNS} rounds, ${SECONDS} s each:`);
log(`  idle pool:        health p99 ${m(idle, 'healthP99').toFixed(1)} ms, eld p99 ${m(idle, 'eldP99').toFixed(2)} ms, uploads ${m(idle, 'uploadMBps').toFixed(1)} MB/s`);
log(`  saturated pool:   health p99 ${m(saturated, 'healthP99').toFixed(1)} ms, eld p99 ${m(saturated, 'eldP99').toFixed(2)} ms, uploads ${m(saturated, 'uploadMBps').toFixed(1)} MB/s, pool busy ${(m(saturated, 'saturated') * 100).toFixed(0)}%`);
log(`  main-thread work: health p99 ${m(mainThread, 'healthP99').toFixed(1)} ms, eld p99 ${m(mainThread, 'eldP99').toFixed(2)} ms, uploads ${m(mainThread, 'uploadMBps').toFixed(1)} MB/s`);
log(`  upload throughput saturated / idle: ${uploadRatio.toFixed(3)}`);
log(`peak RSS (this process: server, pool threads, bench): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB; load now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(
  `RESULT pool thumbs_ratio=${thumbsRatio.toFixed(3)} health_p99_ms=${m(saturated, 'healthP99').toFixed(1)} eld_p99_ms=${m(saturated, 'eldP99').toFixed(2)} main_thread_eld_p99_ms=${m(mainThread, 'eldP99').toFixed(2)} upload_ratio_saturated=${uploadRatio.toFixed(3)}`,
);
