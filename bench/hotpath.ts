// bench:hotpath — where the event loop goes for one upload. Runs the real
// server under `node --cpu-prof`, sends small uploads (PUT, no jobs) and then a
// few large ones, and splits the sampled main-thread time of each phase by
// stage (bench/lib/cpu-profile.ts): µs per small upload, µs per MiB of large
// upload. Also prints each phase's main-thread and whole-process CPU (from
// /proc), S3 requests per upload and the worst event-loop delay (both from the
// service's /metrics). docs/performance.md keeps the figures.
//
//   npm run bench:hotpath -- [--backend s3|fs] [--small 3000] [--size-kib 16] [--concurrency 32] [--large 4] [--large-mib 64] [--keep-profile out.cpuprofile]
//
// On a loaded machine the profile's samples count wall time (a descheduled thread
// looks busy), so the per-stage figures are the measured main-thread CPU split
// in the proportions the samples show.

import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { startChild } from '../test/helpers/child-server.ts';
import { STAGES, splitProfile } from './lib/cpu-profile.ts';
import { arg, BENCH_ENV, loadNote, MiB, payloadHead, s3ForBench } from './lib/harness.ts';
import { payload } from './lib/payload.ts';
import { metricSum, processCpuS, scrape, threadCpuS } from './lib/proc-stats.ts';

const backend = arg('backend', 's3') as 's3' | 'fs';
const SMALL = Number(arg('small', '3000'));
const SIZE = Number(arg('size-kib', '16')) * 1024;
const CONC = Number(arg('concurrency', '32'));
const LARGE = Number(arg('large', '4'));
const LARGE_BYTES = Number(arg('large-mib', '64')) * MiB;
const WARMUP = 300;

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface Phase {
  name: string;
  fromUs: number;
  toUs: number;
  mainCpuS: number;
  procCpuS: number;
  s3Requests: number;
  eldMaxMs: number;
  units: number;
}

const minio = await s3ForBench(backend);
const profDir = await mkdtemp(path.join(tmpdir(), 'sluice-hotpath-'));
try {
  console.log(`bench:hotpath backend=${backend} small=${SMALL}×${SIZE / 1024}KiB c=${CONC} large=${LARGE}×${LARGE_BYTES / MiB}MiB; ${await loadNote()}`);
  const srv = await startChild({
    backend,
    label: 'bench-hotpath',
    startTimeoutMs: 60_000,
    // Production defaults otherwise: info logging, metrics on; jobs off (the ingest path alone).
    env: { ...BENCH_ENV, LOG_LEVEL: 'info', SLUICE_METRICS: 'true' },
    wrap: `exec "$0" --cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-interval=200 "$@"`,
  });
  const pid = srv.proc.pid!;
  const head = await payloadHead();
  const body = Buffer.concat([head, Buffer.alloc(SIZE - head.length, 7)]);
  const agent = new Agent({ connections: CONC, pipelining: 1 });
  let errors = 0;
  const put = async (name: string, b: Buffer | Readable, len: number) => {
    const res = await request(`${srv.url}/v1/files/${name}`, { method: 'PUT', body: b, headers: { 'content-length': String(len) }, dispatcher: agent });
    await res.body.text();
    if (res.statusCode !== 201) errors++;
  };
  const smallBatch = async (n: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: CONC }, async () => {
      while (next < n) {
        next++;
        await put('h.png', body, SIZE);
      }
    }));
  };
  const phase = async (name: string, units: number, work: () => Promise<void>): Promise<Phase> => {
    const before = await scrape(srv.url); // also resets the event-loop max
    const c0 = { main: await threadCpuS(pid), proc: await processCpuS(pid) };
    const fromUs = nowUs();
    await work();
    const toUs = nowUs();
    const c1 = { main: await threadCpuS(pid), proc: await processCpuS(pid) };
    const after = await scrape(srv.url);
    return {
      name,
      fromUs,
      toUs,
      mainCpuS: c1.main - c0.main,
      procCpuS: c1.proc - c0.proc,
      s3Requests: metricSum(after, 'sluice_storage_requests_total') - metricSum(before, 'sluice_storage_requests_total'),
      eldMaxMs: metricSum(after, 'nodejs_eventloop_lag_max_seconds') * 1000,
      units,
    };
  };

  await smallBatch(WARMUP);
  const small = await phase('small', SMALL, () => smallBatch(SMALL));
  const large = await phase('large', (LARGE * LARGE_BYTES) / MiB, async () => {
    for (let i = 0; i < LARGE; i++) await put('big.png', Readable.from(payload(LARGE_BYTES)), LARGE_BYTES);
  });
  await agent.close();
  srv.proc.kill('SIGTERM');
  await srv.exited;
  await srv.cleanup();
  const prof = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
  if (!prof) throw new Error('the server wrote no .cpuprofile');
  const file = path.join(profDir, prof);
  const keep = arg('keep-profile', '');
  if (keep) await copyFile(file, keep);

  for (const ph of [small, large]) {
    const split = await splitProfile(file, ph.fromUs, ph.toUs);
    const unit = ph.name === 'small' ? 'upload' : 'MiB';
    const per = (us: number) => us / ph.units;
    console.log(`\n${ph.name}: ${ph.units} ${unit}s in ${((ph.toUs - ph.fromUs) / 1e6).toFixed(1)} s; main-thread CPU ${per(ph.mainCpuS * 1e6).toFixed(0)} µs/${unit}, process CPU ${per(ph.procCpuS * 1e6).toFixed(0)} µs/${unit}` +
      (backend === 's3' ? `, S3 requests ${(ph.s3Requests / (ph.name === 'small' ? ph.units : LARGE)).toFixed(2)}/file` : '') + `, event-loop delay max ${ph.eldMaxMs.toFixed(1)} ms`);
    // Samples are wall time; the main thread's CPU is the measured total, split in the samples' proportions.
    const scale = (ph.mainCpuS * 1e6) / split.busyUs;
    console.log(`  main-thread CPU by stage (sampled busy ${per(split.busyUs).toFixed(0)} µs/${unit} of wall time, scaled to the measured CPU):`);
    for (const s of STAGES) {
      const v = split.us.get(s)!;
      if (v > 0) console.log(`    ${s.padEnd(58)} ${per(v * scale).toFixed(1).padStart(9)} µs  ${((100 * v) / split.busyUs).toFixed(1).padStart(5)} %`);
    }
    console.log('  heaviest frames (self time, scaled the same way):');
    for (const t of split.top.slice(0, 12)) console.log(`    ${per(t.us * scale).toFixed(1).padStart(8)} µs  ${t.frame}`);
  }
  console.log(`\nerrors=${errors}; after: ${await loadNote()}`);
  console.log(
    `RESULT hotpath backend=${backend} small_main_cpu_us=${((small.mainCpuS * 1e6) / small.units).toFixed(0)} small_s3_requests=${(small.s3Requests / small.units).toFixed(2)} ` +
      `large_main_cpu_us_per_mib=${((large.mainCpuS * 1e6) / large.units).toFixed(0)} eld_max_ms=${Math.max(small.eldMaxMs, large.eldMaxMs).toFixed(1)} errors=${errors}`,
  );
} finally {
  await rm(profDir, { recursive: true, force: true });
  await minio?.stop();
}
