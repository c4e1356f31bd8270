// npm run bench:pool-rss — RSS over a long run of image jobs through the pool,
// with glibc's malloc and with jemalloc (LD_PRELOAD), side by side. Worker
// threads × libuv threads × libvips threads each get glibc arenas, which
// fragment: RSS climbs and stays up. The figures back docs/jobs.md's advice.
//
// BENCH_JOBS (400 per allocator), BENCH_POOL (the service's default pool size,
// SLUICE_JOBS_POOL_SIZE's default), JEMALLOC (path of libjemalloc.so.2).
// The fourth variant is what the Docker image ships: jemalloc with a short
// dirty-page decay and a background purging thread (MALLOC_CONF, which the Dockerfile sets: the lowest peak and end RSS measured).

import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { loadConfig } from '../src/config.ts';
import { imageAllocatorEnv, JEMALLOC, jemallocEnv } from './lib/allocator.ts';
import { IMAGE_WORKER } from '../src/jobs/tasks.ts';
import type { ImageTask, TaskResult } from '../workers/tasks.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 400);
const POOL = Number(process.env.BENCH_POOL ?? loadConfig({}).jobs.poolSize);
const mib = (b: number) => Math.round(b / 1024 / 1024);

if (process.argv[2] === '--child') {
  sharp.cache(false);
  sharp.concurrency(1);
  // Varied sizes and formats: fragmentation comes from mixed allocation sizes.
  const specs = [[3000, 2000, 'jpeg'], [1200, 800, 'png'], [640, 480, 'jpeg'], [2000, 2000, 'webp']] as const;
  const inputs = await Promise.all(specs.map(async ([w, h, f], i) => {
    const raw = Buffer.alloc(w * h * 3);
    for (let j = 0; j < raw.length; j++) raw[j] = ((j + i * 31) * 2654435761) >>> 26;
    const buf = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).toFormat(f).toBuffer();
    const view = new Uint8Array(new SharedArrayBuffer(buf.length));
    view.set(buf);
    return view;
  }));
  const outputs: [number | undefined, ImageTask['format']][] = [[256, 'webp'], [1024, 'webp'], [1024, 'jpeg'], [undefined, 'avif']];
  const pool = new Piscina({ filename: IMAGE_WORKER, minThreads: POOL, maxThreads: POOL });
  const start = process.memoryUsage().rss;
  let peak = start;
  const samples: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: POOL }, async () => {
    while (next < JOBS) {
      const i = next++;
      const [size, format] = outputs[i % outputs.length]!;
      const r = (await pool.run({
        storage: { kind: 'fs', dataDir: '/nonexistent' },
        input: { bytes: inputs[i % inputs.length]! },
        format,
        ...(size ? { size } : {}),
        limits: { maxPixels: 40_000_000, failOn: 'error', sharpConcurrency: 1, timeoutMs: 60_000 },
      } satisfies ImageTask)) as TaskResult;
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      const rss = process.memoryUsage().rss;
      peak = Math.max(peak, rss);
      if (i % Math.max(1, Math.floor(JOBS / 10)) === 0) samples.push(mib(rss));
    }
  }));
  const end = process.memoryUsage().rss;
  await pool.destroy();
  process.stdout.write(JSON.stringify({ startMiB: mib(start), peakMiB: mib(peak), endMiB: mib(end), samples }) + '\n');
  process.exit(0);
}

console.log(`bench:pool-rss  node ${process.version}  load ${loadavg().map((l) => l.toFixed(2)).join(' ')}  ${JOBS} jobs per allocator, pool ${POOL}, sharp.concurrency 1, cache off`);
const self = fileURLToPath(import.meta.url);
const out: Record<string, { startMiB: number; peakMiB: number; endMiB: number; samples: number[] }> = {};
const variants: [string, Record<string, string> | undefined][] = [
  ['glibc', {}],
  ['glibc-arena2', { MALLOC_ARENA_MAX: '2' }],
  ['jemalloc', jemallocEnv()],
  ['jemalloc-decay', imageAllocatorEnv()],
];
for (const [label, extra] of variants) {
  if (!extra) {
    console.log(`  ${label}: ${JEMALLOC} not found, skipped`);
    continue;
  }
  const r = spawnSync(process.execPath, [self, '--child'], { env: { ...process.env, ...extra }, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${label} run failed: ${r.stderr}`);
  out[label] = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const o = out[label]!;
  console.log(`  ${label.padEnd(14)} RSS start ${o.startMiB} MiB, peak ${o.peakMiB} MiB, end ${o.endMiB} MiB; every ${Math.floor(JOBS / 10)} jobs: ${o.samples.join(' ')}`);
}
console.log(`RESULT pool-rss glibc_peak_mb=${out.glibc?.peakMiB ?? 'na'} glibc_end_mb=${out.glibc?.endMiB ?? 'na'} arena2_peak_mb=${out['glibc-arena2']?.peakMiB ?? 'na'} arena2_end_mb=${out['glibc-arena2']?.endMiB ?? 'na'} jemalloc_peak_mb=${out.jemalloc?.peakMiB ?? 'na'} jemalloc_end_mb=${out.jemalloc?.endMiB ?? 'na'} jemalloc_decay_peak_mb=${out['jemalloc-decay']?.peakMiB ?? 'na'} jemalloc_decay_end_mb=${out['jemalloc-decay']?.endMiB ?? 'na'} pool=${POOL} goal_400_met=${(out['jemalloc-decay']?.peakMiB ?? Infinity) < 400}`);
