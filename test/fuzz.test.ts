// 20,000 generated malformed requests against the upload routes of a real
// server process over loopback (see test/helpers/fuzz.ts for the generator):
// every answer is a 4xx JSON error, the process never crashes and stays
// healthy, and open file descriptors return to their post-warm-up baseline.
// Latency and RSS drift are figures, not pass/fail: `npm run bench:fuzz` runs
// 100,000 and reports both (docs/performance.md, "fuzz RSS", for why a drift
// of tens of MiB is the allocator, not a leak).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runFuzz, send, startFuzzServer, type FuzzServer } from './helpers/fuzz.ts';

const WARMUP = 8000;
const TOTAL = 20_000;
/** A few fds may be in a closing state at any moment; a leaked socket per request would be thousands. */
const MAX_FD_DRIFT = 2;
/** Closing sockets settle in milliseconds; a loaded CI machine gets far more than it needs. */
const FD_SETTLE_DEADLINE_MS = 60_000;
/** An answer later than this counts as none: far above any healthy answer, so only a hang trips it. */
const ANSWER_TIMEOUT_MS = 60_000;
/** Bounded, with a margin no healthy run comes near (about 350 MiB on the dev machine): a leaked body per request would pass it. */
const RSS_CEILING_BYTES = 2 * 2 ** 30;

let server: FuzzServer;
before(async () => {
  server = await startFuzzServer();
});
after(async () => {
  await server?.stop();
});

test(`${TOTAL} malformed upload requests: all 4xx JSON, no crash, no fd drift`, { timeout: 600_000 }, async () => {
  const fdStart = await server.openFds();
  const warm = await runFuzz(server, { from: 0, count: WARMUP, concurrency: 6, answerTimeoutMs: ANSWER_TIMEOUT_MS });
  // Every request has its answer; what may still be open are sockets the server is closing.
  const fd0 = await server.fdsAtMost(fdStart + MAX_FD_DRIFT, FD_SETTLE_DEADLINE_MS);
  const rss0 = await server.rssBytes();
  const main = await runFuzz(server, { from: WARMUP, count: TOTAL - WARMUP, concurrency: 6, answerTimeoutMs: ANSWER_TIMEOUT_MS });
  const fd1 = await server.fdsAtMost(fd0 + MAX_FD_DRIFT, FD_SETTLE_DEADLINE_MS);
  const rss1 = await server.rssBytes();

  const all = [warm, main];
  const requests = all.reduce((n, r) => n + r.requests, 0);
  const bad = all.flatMap((r) => r.bad);
  const codes = new Set(all.flatMap((r) => Object.keys(r.byCode)));
  console.log(`fuzz: ${requests} requests in ${Math.round((warm.durationMs + main.durationMs) / 1000)} s; max latency ${Math.round(Math.max(warm.maxLatencyMs, main.maxLatencyMs))} ms; rss ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MiB; fds ${fdStart} → ${fd0} → ${fd1}`);
  console.log(`fuzz answers: ${[...codes].sort().join(', ')}`);

  assert.equal(server.exited(), false, `server crashed: ${server.stderr()}`);
  assert.equal(requests, TOTAL);
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} answers were not 4xx JSON errors (replay with generateCase(index))`);
  // The generator reaches the parsers, not just the front door.
  for (const code of ['MALFORMED_MULTIPART', 'TOO_MANY_FIELDS', 'TYPE_NOT_ALLOWED', 'CHECKSUM_MISMATCH', 'UPLOAD_TIMEOUT', 'MALFORMED_REQUEST', 'INVALID_CREDENTIALS']) {
    assert.ok([...codes].some((c) => c.endsWith(` ${code}`)), `no ${code} answer among ${[...codes].join(', ')}`);
  }
  assert.ok(fd1 - fd0 <= MAX_FD_DRIFT, `open fds ${fd0} → ${fd1}`);
  assert.ok(rss1 < RSS_CEILING_BYTES, `RSS ${(rss1 / 2 ** 20).toFixed(0)} MiB`);
  const health = await send(server.port, { kind: 'health', head: 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', body: Buffer.alloc(0), stalls: false }, ANSWER_TIMEOUT_MS);
  assert.equal(health.status, 200);
  assert.ok(!/"level":50/.test(server.stderr()), `the server logged errors: ${server.stderr().slice(-2000)}`);
});
