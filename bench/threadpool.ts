// bench:threadpool — the effect of UV_THREADPOOL_SIZE on concurrent uploads.
// On the fs backend every upload writes, fsyncs and renames through libuv's
// threadpool (fsync is the slow part), and its sha256 runs beside it; a pool
// smaller than the number of concurrent uploads queues those calls. Each size
// is measured side by side in the same run, interleaved, median of R runs.
// (Compression and image jobs, issue 3, also run on this pool through zlib and
// sharp; rerun this once they land to see their share.)
//
//   npm run bench:threadpool -- [--sizes 1,2,4,8,16] [--concurrency 32] [--file-kib 512] [--seconds 5] [--runs 3]

import { startChild } from '../test/helpers/child-server.ts';
import { arg, BENCH_ENV, loadNote, median, rssSampler, uploadRate } from './lib/harness.ts';

const sizes = arg('sizes', '1,2,4,8,16').split(',').map(Number);
const concurrency = Number(arg('concurrency', '32'));
const fileKiB = Number(arg('file-kib', '512'));
const seconds = Number(arg('seconds', '5'));
const runs = Number(arg('runs', '3'));

console.log(`bench:threadpool fs backend, ${concurrency} concurrent uploads of ${fileKiB} KiB, ${seconds} s per measurement, ${runs} runs; ${await loadNote()}`);
const results = new Map<number, { rates: number[]; mibps: number[]; errors: number; rss: number }>(sizes.map((s) => [s, { rates: [], mibps: [], errors: 0, rss: 0 }]));
for (let r = 0; r < runs; r++) {
  for (const size of sizes) {
    const srv = await startChild({ env: { ...BENCH_ENV, UV_THREADPOOL_SIZE: String(size), LOG_LEVEL: 'info', SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0' } });
    const rss = rssSampler(srv.proc.pid!);
    // LOG_LEVEL info keeps the per-upload summary line, as in production.
    const m = await uploadRate(srv.url, { size: fileKiB * 1024, concurrency, durationMs: seconds * 1000 });
    const e = results.get(size)!;
    e.rates.push(m.rate);
    e.mibps.push(m.mibps);
    e.errors += m.errors;
    e.rss = Math.max(e.rss, await rss.stop());
    srv.proc.kill('SIGTERM');
    await srv.exited;
    await srv.cleanup();
  }
}
const base = median(results.get(sizes.includes(4) ? 4 : sizes[0]!)!.rates);
for (const [size, e] of results) {
  console.log(
    `UV_THREADPOOL_SIZE=${String(size).padStart(2)}  ${median(e.rates).toFixed(1).padStart(7)} uploads/s  ${median(e.mibps).toFixed(1).padStart(6)} MiB/s  ×${(median(e.rates) / base).toFixed(2)} vs ${sizes.includes(4) ? 4 : sizes[0]}  runs=[${e.rates.map((x) => x.toFixed(1)).join(', ')}] errors=${e.errors} peak_rss=${e.rss}MiB`,
  );
}
const best = [...results].sort((a, b) => median(b[1].rates) - median(a[1].rates))[0]!;
console.log(`after: ${await loadNote()}`);
console.log(`RESULT threadpool best_size=${best[0]} ${sizes.map((s) => `rate_${s}=${median(results.get(s)!.rates).toFixed(1)}`).join(' ')}`);
