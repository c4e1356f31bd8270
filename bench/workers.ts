// bench:workers — small-file upload rate with --workers N against 1 worker,
// measured side by side in the same run (interleaved), median of R runs.
//
//   npm run bench:workers -- [--workers 2] [--concurrency 32] [--file-kib 4] [--seconds 5] [--runs 3]

import { startChild } from '../test/helpers/child-server.ts';
import { arg, BENCH_ENV, loadNote, median, uploadRate } from './lib/harness.ts';

const workers = Number(arg('workers', '2'));
const concurrency = Number(arg('concurrency', '32'));
const fileKiB = Number(arg('file-kib', '4'));
const seconds = Number(arg('seconds', '5'));
const runs = Number(arg('runs', '3'));

console.log(`bench:workers fs backend, ${concurrency} keep-alive clients uploading ${fileKiB} KiB files, ${seconds} s per measurement, ${runs} runs; ${await loadNote()}`);
const rates = new Map<number, number[]>([[1, []], [workers, []]]);
for (let r = 0; r < runs; r++) {
  for (const n of [1, workers]) {
    const srv = await startChild({ args: ['--workers', String(n)], env: { ...BENCH_ENV, LOG_LEVEL: 'info', SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0' } });
    if (n > 1) await srv.waitForLog(() => srv.logs.filter((l) => l.msg === 'sluice listening').length >= n);
    const m = await uploadRate(srv.url, { size: fileKiB * 1024, concurrency, durationMs: seconds * 1000 });
    rates.get(n)!.push(m.rate);
    if (m.errors) console.log(`  workers=${n} run ${r + 1}: ${m.errors} errors`);
    srv.proc.kill('SIGTERM');
    await srv.exited;
    await srv.cleanup();
  }
}
const one = median(rates.get(1)!);
const many = median(rates.get(workers)!);
console.log(`workers=1  ${one.toFixed(1)} uploads/s  runs=[${rates.get(1)!.map((x) => x.toFixed(1)).join(', ')}]`);
console.log(`workers=${workers}  ${many.toFixed(1)} uploads/s  runs=[${rates.get(workers)!.map((x) => x.toFixed(1)).join(', ')}]  ×${(many / one).toFixed(2)}`);
console.log(`after: ${await loadNote()}`);
console.log(`RESULT workers workers=${workers} rate_1=${one.toFixed(1)} rate_${workers}=${many.toFixed(1)} ratio=${(many / one).toFixed(2)}`);
