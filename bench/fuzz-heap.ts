// `npm run bench:fuzz-heap [-- requests]`: is the RSS the fuzz run adds after
// warm-up a leak? Runs the fuzz target (test/helpers/fuzz.ts) with
// --heapsnapshot-signal, takes a heap snapshot after the warm-up and another
// after `requests` more (default 20,000), and compares them by constructor:
// a leak shows as objects that grow with the request count; allocator noise
// shows as RSS that grows while the live heap and external memory do not.
// Ends with
//   RESULT fuzz-heap requests=… rss_drift_mb=… heap_drift_mb=… external_drift_mb=… per_request_growth=…

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runFuzz, send, startFuzzServer, type FuzzServer } from '../test/helpers/fuzz.ts';

const requests = Number(process.argv[2] ?? 20_000);
const warmup = 8000;
const concurrency = 6;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

interface Census {
  total: number;
  byName: Map<string, { count: number; bytes: number }>;
}

/** Live objects grouped by type and constructor (what DevTools' "Summary" shows), self sizes summed. */
function census(snap: HeapSnapshot): Census {
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const types = snap.snapshot.meta.node_types[0];
  const byName = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    // Strings and code are keyed by type: their names are their contents.
    const key = type === 'object' || type === 'closure' || type === 'native' ? `${type} ${snap.strings[snap.nodes[i + nameAt]!]}` : `(${type})`;
    const size = snap.nodes[i + sizeAt]!;
    total += size;
    const e = byName.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += size;
    byName.set(key, e);
  }
  return { total, byName };
}

async function snapshot(server: FuzzServer, dir: string): Promise<Census> {
  const before = new Set(await readdir(dir));
  server.child.kill('SIGUSR2');
  let file: string | undefined;
  while (!file) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    file = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
  }
  // The snapshot is written synchronously on the server's main thread: once it answers again, the file is whole.
  await send(server.port, { kind: 'health', head: 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', body: Buffer.alloc(0), stalls: false }, 120_000);
  const c = census(JSON.parse(await readFile(path.join(dir, file), 'utf8')) as HeapSnapshot);
  await rm(path.join(dir, file));
  return c;
}

const dir = await mkdtemp(path.join(tmpdir(), 'sluice-fuzz-heap-'));
const server = await startFuzzServer({ nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] });
try {
  const fdStart = await server.openFds();
  const rssStart = await server.rssBytes();
  await runFuzz(server, { from: 0, count: warmup, concurrency, answerTimeoutMs: 60_000 });
  await server.fdsAtMost(fdStart + 2, 30_000);
  const rss0BeforeGc = await server.rssBytes();
  const a = await snapshot(server, dir);
  const m0 = await server.memory();
  const rss0 = await server.rssBytes();
  const run = await runFuzz(server, { from: warmup, count: requests, concurrency, answerTimeoutMs: 60_000 });
  await server.fdsAtMost(fdStart + 2, 30_000);
  const rss1BeforeGc = await server.rssBytes();
  const b = await snapshot(server, dir);
  const m1 = await server.memory();
  const rss1 = await server.rssBytes();

  console.log(`fuzz requests   warm-up ${warmup}, then ${run.requests} (bad ${run.bad.length}, crashed ${server.exited()})`);
  console.log(`rss             start ${mib(rssStart)} MiB; before the snapshot's full GC: after warm-up ${mib(rss0BeforeGc)} MiB, after the run ${mib(rss1BeforeGc)} MiB: ${mib(rss1BeforeGc - rss0BeforeGc)} MiB`);
  console.log(`rss after GC    after warm-up ${mib(rss0)} MiB, after the run ${mib(rss1)} MiB: ${mib(rss1 - rss0)} MiB`);
  console.log(`live heap       ${mib(a.total)} → ${mib(b.total)} MiB (snapshots, after a full GC): ${mib(b.total - a.total)} MiB`);
  console.log(`V8 heap used    ${mib(m0.heapUsed)} → ${mib(m1.heapUsed)} MiB (/metrics, between GCs)`);
  console.log(`external        ${mib(m0.external)} → ${mib(m1.external)} MiB (Buffers and other off-heap memory V8 knows of)`);
  const growth = [...b.byName]
    .map(([k, v]) => ({ k, count: v.count - (a.byName.get(k)?.count ?? 0), bytes: v.bytes - (a.byName.get(k)?.bytes ?? 0) }))
    .sort((x, y) => y.bytes - x.bytes);
  console.log(`largest growth by constructor (count, bytes) over ${run.requests} requests:`);
  for (const g of growth.slice(0, 12)) console.log(`  ${g.k.slice(0, 60).padEnd(60)} ${String(g.count).padStart(8)} ${String(g.bytes).padStart(10)}`);
  const perRequest = growth.filter((g) => g.count >= run.requests);
  console.log(`constructors that grew by >= 1 object per request: ${perRequest.length === 0 ? 'none' : perRequest.map((g) => g.k).join(', ')}`);
  console.log(
    `RESULT fuzz-heap requests=${run.requests} rss_drift_mb=${mib(rss1BeforeGc - rss0BeforeGc)} rss_drift_after_gc_mb=${mib(rss1 - rss0)} heap_drift_mb=${mib(b.total - a.total)} external_drift_mb=${mib(m1.external - m0.external)} per_request_growth=${perRequest.length}`,
  );
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
