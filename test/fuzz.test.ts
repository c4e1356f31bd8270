// 20,000 generated malformed requests against the upload routes of a real
// server process over loopback (see test/helpers/fuzz.ts for the generator):
// every answer is a 4xx JSON error within a second of the last byte sent, the
// process never crashes and stays healthy, and RSS and open file descriptors
// return to their post-warm-up baseline. `npm run bench:fuzz` runs 100,000.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runFuzz, send, startFuzzServer, type FuzzServer } from './helpers/fuzz.ts';

const WARMUP = 8000;
const TOTAL = 20_000;
/**
 * RSS grows for the first ~8,000 requests (V8 and malloc size themselves to
 * the load: about 140 → 350 MiB on the dev machine), then stays within a few
 * MiB. A leaked 4 KiB per request would pass this bound over the 12,000
 * measured requests, and a leaked body buffer per request far sooner.
 */
const MAX_RSS_DRIFT_MB = 48;
const MAX_FD_DRIFT = 2;

let server: FuzzServer;
before(async () => {
  server = await startFuzzServer();
});
after(async () => {
  await server?.stop();
});

async function settle(): Promise<void> {
  // Let closing sockets and timed-out uploads finish.
  await new Promise((resolve) => setTimeout(resolve, 1500));
}

test(`${TOTAL} malformed upload requests: all 4xx JSON within 1 s, no crash, no RSS or fd drift`, { timeout: 240_000 }, async () => {
  const warm = await runFuzz(server, { from: 0, count: WARMUP, concurrency: 6 });
  await settle();
  const rss0 = await server.rssBytes();
  const fd0 = await server.openFds();
  const main = await runFuzz(server, { from: WARMUP, count: TOTAL - WARMUP, concurrency: 6 });
  await settle();
  const rss1 = await server.rssBytes();
  const fd1 = await server.openFds();

  const all = [warm, main];
  const requests = all.reduce((n, r) => n + r.requests, 0);
  const bad = all.flatMap((r) => r.bad);
  const slow = all.flatMap((r) => r.slow);
  const codes = new Set(all.flatMap((r) => Object.keys(r.byCode)));
  const rssDriftMb = (rss1 - rss0) / 2 ** 20;
  console.log(`fuzz: ${requests} requests in ${Math.round((warm.durationMs + main.durationMs) / 1000)} s; max latency ${Math.round(Math.max(warm.maxLatencyMs, main.maxLatencyMs))} ms; rss ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MiB; fds ${fd0} → ${fd1}`);
  console.log(`fuzz answers: ${[...codes].sort().join(', ')}`);

  assert.equal(server.exited(), false, `server crashed: ${server.stderr()}`);
  assert.equal(requests, TOTAL);
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} answers were not 4xx JSON errors (replay with generateCase(index))`);
  assert.deepEqual(slow.slice(0, 5), [], `${slow.length} answers came more than 1 s after the last byte`);
  // The generator reaches the parsers, not just the front door.
  for (const code of ['MALFORMED_MULTIPART', 'TOO_MANY_FIELDS', 'TYPE_NOT_ALLOWED', 'CHECKSUM_MISMATCH', 'UPLOAD_TIMEOUT', 'MALFORMED_REQUEST', 'INVALID_CREDENTIALS']) {
    assert.ok([...codes].some((c) => c.endsWith(` ${code}`)), `no ${code} answer among ${[...codes].join(', ')}`);
  }
  assert.ok(rssDriftMb < MAX_RSS_DRIFT_MB, `RSS grew ${rssDriftMb.toFixed(1)} MiB after warm-up`);
  assert.ok(fd1 - fd0 <= MAX_FD_DRIFT, `open fds ${fd0} → ${fd1}`);
  const health = await send(server.port, { kind: 'health', head: 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', body: Buffer.alloc(0), stalls: false });
  assert.equal(health.status, 200);
  assert.ok(!/"level":50/.test(server.stderr()), `the server logged errors: ${server.stderr().slice(-2000)}`);
});
