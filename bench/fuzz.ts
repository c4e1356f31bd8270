// `npm run bench:fuzz [-- requests]`: 100,000 generated malformed requests
// (test/helpers/fuzz.ts) against a real server process; prints the answers by
// code, latency, RSS and fd drift after a 10% warm-up, and ends with
//   RESULT fuzz requests=… five_xx=… crashes=… rss_drift_mb=… fd_drift=…

import { runFuzz, startFuzzServer, type FuzzReport } from '../test/helpers/fuzz.ts';

const total = Number(process.argv[2] ?? 100_000);
const warmup = Math.floor(total / 10);
const concurrency = Number(process.env.FUZZ_CONCURRENCY ?? 8);
const mib = (b: number) => b / 2 ** 20;

const server = await startFuzzServer();
const rssStart = await server.rssBytes();
const warm = await runFuzz(server, { from: 0, count: warmup, concurrency });
await new Promise((resolve) => setTimeout(resolve, 1500));
const rss0 = await server.rssBytes();
const fd0 = await server.openFds();
let peakRss = rss0;
const sampler = setInterval(() => {
  server.rssBytes().then((r) => (peakRss = Math.max(peakRss, r)), () => {});
}, 500);
const main = await runFuzz(server, { from: warmup, count: total - warmup, concurrency });
clearInterval(sampler);
await new Promise((resolve) => setTimeout(resolve, 1500));
const crashed = server.exited();
const rss1 = crashed ? rss0 : await server.rssBytes();
const fd1 = crashed ? fd0 : await server.openFds();
await server.stop();

const all: FuzzReport[] = [warm, main];
const sum = (f: (r: FuzzReport) => number) => all.reduce((n, r) => n + f(r), 0);
const byCode: Record<string, number> = {};
for (const r of all) for (const [k, v] of Object.entries(r.byCode)) byCode[k] = (byCode[k] ?? 0) + v;
const secs = sum((r) => r.durationMs) / 1000;
console.log(`requests        ${sum((r) => r.requests)} in ${secs.toFixed(1)} s (${(sum((r) => r.requests) / secs).toFixed(0)} req/s, concurrency ${concurrency})`);
for (const [k, v] of Object.entries(byCode).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(36)} ${v}`);
console.log(`not 4xx JSON    ${sum((r) => r.bad.length)}`);
console.log(`later than 1 s  ${sum((r) => r.slow.length)}`);
console.log(`max latency     ${Math.max(...all.map((r) => r.maxLatencyMs)).toFixed(0)} ms after the last byte`);
console.log(`rss             start ${mib(rssStart).toFixed(0)} MiB, after warm-up ${mib(rss0).toFixed(0)} MiB, end ${mib(rss1).toFixed(0)} MiB, peak ${mib(peakRss).toFixed(0)} MiB`);
console.log(`open fds        ${fd0} → ${fd1}`);
for (const b of all.flatMap((r) => r.bad).slice(0, 10)) console.log(`  bad #${b.index} ${b.kind}: ${JSON.stringify(b.outcome)}`);
console.log(
  `RESULT fuzz requests=${sum((r) => r.requests)} five_xx=${sum((r) => r.fiveXx)} not_4xx_json=${sum((r) => r.bad.length)} slow=${sum((r) => r.slow.length)} crashes=${crashed ? 1 : 0} rss_drift_mb=${mib(rss1 - rss0).toFixed(1)} fd_drift=${fd1 - fd0}`,
);
