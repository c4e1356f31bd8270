// bench:c10k — N clients (default 10,000) each upload 64 KiB slowly over ~20 s
// to one server process on the S3 backend. Reports errors, the server's peak
// RSS and /health latency (p99) measured throughout by a separate poller, the
// CPU seconds the server and MinIO spent (which one was the limit), the
// service's CPU and S3 requests per upload, and the kernel's TCP counters
// (listen-queue overflows and SYN-cookie failures are connections reset
// before the server ever saw them).
//
//   npm run bench:c10k -- [--clients 10000] [--seconds 20] [--backend s3|fs|both] [--cpu-prof out.cpuprofile]
//
// Needs ~N file descriptors on each side: the limit is raised for the child
// processes with `ulimit -n` (up to the hard limit), never in the code.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { startChild } from '../test/helpers/child-server.ts';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { STAGES, splitProfile } from './lib/cpu-profile.ts';
import { arg, BENCH_ENV, loadNote, payloadHead, percentile, rssSampler, s3ForBench } from './lib/harness.ts';
import { metricSum, processCpuS, scrape, threadCpuS } from './lib/proc-stats.ts';

const clients = Number(arg('clients', '10000'));
const seconds = Number(arg('seconds', '20'));
const backendArg = arg('backend', 's3');
const cpuProf = arg('cpu-prof', '');
const SIZE = 64 * 1024;
const CHUNKS = 16;
const RAMP_MS = 5000;
/** Why connections ended without an answer, by error code ('closed' when the server just closed). */
const connErrors = new Map<string, number>();
/** The kernel's TCP counters that explain connections reset before the server saw them. */
const TCP_COUNTERS = ['ListenOverflows', 'ListenDrops', 'SyncookiesSent', 'SyncookiesFailed', 'TCPAbortOnData', 'TCPAbortOnClose', 'TCPAbortOnMemory'];


// The client side needs a descriptor per connection: re-run under a raised limit.
if (!process.env.SLUICE_BENCH_ULIMIT) {
  const child = spawn('sh', ['-c', `ulimit -n $(ulimit -Hn) && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, SLUICE_BENCH_ULIMIT: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  const results: Record<string, string>[] = [];
  for (const b of backendArg === 'both' ? (['s3', 'fs'] as const) : [backendArg as 's3' | 'fs']) {
    connErrors.clear();
    results.push(await main(b));
  }
  const keys = (r: Record<string, string>, prefix: string) => Object.entries(r).map(([k, v]) => `${prefix}${k}=${v}`).join(' ');
  if (results.length === 1) console.log(`RESULT c10k clients=${clients} ${keys(results[0]!, '')}`);
  else console.log(`RESULT c10k clients=${clients} ${results.map((r) => keys(r, `${r.backend}_`)).join(' ')}`.replace(/ (s3|fs)_backend=(s3|fs)/g, ''));
}

async function tcpCounters(): Promise<Map<string, number>> {
  const lines = (await readFile('/proc/net/netstat', 'utf8')).split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]!.split(' ').slice(1);
  const values = lines[1]!.split(' ').slice(1).map(Number);
  return new Map(names.map((n, i) => [n, values[i]!]));
}

async function upload(port: number, head: Buffer, startDelay: number): Promise<number> {
  await new Promise((r) => setTimeout(r, startDelay));
  const body = Buffer.concat([head, Buffer.alloc(SIZE - head.length, 7)]);
  return new Promise<number>((resolve) => {
    const sock: Socket = connect(port, '127.0.0.1');
    let raw = '';
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (status: number) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(status);
    };
    sock.setNoDelay(true);
    sock.on('error', (e: NodeJS.ErrnoException) => {
      connErrors.set(e.code ?? 'error', (connErrors.get(e.code ?? 'error') ?? 0) + 1);
      finish(0);
    });
    sock.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      if (m && raw.includes('\r\n\r\n')) finish(Number(m[1]));
    });
    sock.on('close', () => {
      if (!/^HTTP\/1\.1 \d{3}/.test(raw) && !sock.errored) connErrors.set(i < CHUNKS ? 'closed-mid-body' : 'closed-after-body', (connErrors.get(i < CHUNKS ? 'closed-mid-body' : 'closed-after-body') ?? 0) + 1);
      finish(0);
    });
    sock.once('connect', () => {
      sock.write(`PUT /v1/files/c.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${SIZE}\r\nConnection: close\r\n\r\n`);
      const step = SIZE / CHUNKS;
      const every = (seconds * 1000) / CHUNKS;
      const send = () => {
        sock.write(body.subarray(i * step, (i + 1) * step));
        if (++i < CHUNKS) timer = setTimeout(send, every * (0.8 + Math.random() * 0.4));
      };
      send();
    });
  });
}

async function main(backend: 's3' | 'fs'): Promise<Record<string, string>> {
  const minio = await s3ForBench(backend);
  const profDir = cpuProf ? await mkdtemp(path.join(tmpdir(), 'sluice-c10k-prof-')) : undefined;
  try {
    console.log(`bench:c10k clients=${clients} upload=${SIZE / 1024}KiB over ~${seconds}s backend=${backend}; ${await loadNote()}`);
    const profFlags = profDir ? `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-interval=500 ` : '';
    const srv = await startChild({
      backend,
      label: 'bench-c10k',
      startTimeoutMs: 60_000,
      // Jobs off: this measures ingest (the PNG bodies would get thumbnails, bench:pool's subject).
      env: { ...BENCH_ENV, LOG_LEVEL: 'info', SLUICE_JOBS_POOL_SIZE: '0', SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: String(10 * seconds * 1000), SLUICE_UPLOAD_IDLE_TIMEOUT_MS: String(seconds * 1000) },
      wrap: `ulimit -n $(ulimit -Hn) && exec "$0" ${profFlags}"$@"`,
    });
    const pid = srv.proc.pid!;
    const rss = rssSampler(pid);
    const tcp0 = await tcpCounters();
    const metrics0 = await scrape(srv.url);
    const cpu0 = { server: await processCpuS(pid), main: await threadCpuS(pid), minio: minio?.pid ? await processCpuS(minio.pid) : 0 };
    const head = await payloadHead();

    // /health through its own keep-alive connection, every 100 ms.
    const healthAgent = new Agent({ connections: 1 });
    const health: number[] = [];
    let healthErrors = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const t = performance.now();
        try {
          const res = await request(`${srv.url}/health`, { dispatcher: healthAgent, headersTimeout: 10_000 });
          await res.body.text();
          if (res.statusCode === 200) health.push(performance.now() - t);
          else healthErrors++;
        } catch {
          healthErrors++;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    // The server's own memory split once a second (its /metrics), kept for the sample of highest RSS:
    // what the peak is made of (V8 heap, Buffers outside it, the rest: native and allocator).
    const memAgent = new Agent({ connections: 1 });
    let atPeak: { rss: number; heapTotal: number; heapUsed: number; external: number } | undefined;
    const memPoller = (async () => {
      while (polling) {
        try {
          const res = await request(`${srv.url}/metrics`, { dispatcher: memAgent, headersTimeout: 10_000 });
          const text = await res.body.text();
          const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
          const m = { rss: v('process_resident_memory_bytes'), heapTotal: v('nodejs_heap_size_total_bytes'), heapUsed: v('nodejs_heap_size_used_bytes'), external: v('nodejs_external_memory_bytes') };
          if (!atPeak || m.rss > atPeak.rss) atPeak = m;
        } catch {
          // A busy server may time out; the next sample counts.
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();

    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: clients }, (_, i) => upload(srv.port, head, (i / clients) * RAMP_MS)));
    const wall = (performance.now() - started) / 1000;
    polling = false;
    await poller;
    await memPoller;
    await memAgent.close();
    const cpu1 = { server: await processCpuS(pid), main: await threadCpuS(pid), minio: minio?.pid ? await processCpuS(minio.pid) : 0 };
    const metrics1 = await scrape(srv.url);
    const tcp1 = await tcpCounters();
    const peak = await rss.stop();
    const byStatus = new Map<number, number>();
    for (const s of statuses) byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const errors = statuses.filter((s) => s !== 201).length;
    srv.proc.kill('SIGTERM');
    await srv.exited;
    const failures = new Map<string, number>();
    let committed = 0;
    for (const l of srv.logs) {
      const code = (l.upload as { outcome?: string } | undefined)?.outcome ?? (Number(l.level) >= 50 ? String(l.msg) : undefined);
      if (code === 'committed') committed++;
      else if (code) failures.set(code, (failures.get(code) ?? 0) + 1);
    }
    console.log(`server log: committed=${committed}${failures.size > 0 ? ` failures: ${[...failures].map(([c, n]) => `${c}=${n}`).join(' ')}` : ''}`);
    const tcp = TCP_COUNTERS.map((k) => `${k}=${(tcp1.get(k) ?? 0) - (tcp0.get(k) ?? 0)}`).join(' ');
    console.log(`kernel TCP counters during the run (whole machine): ${tcp}`);
    await srv.cleanup();
    const cpu = { server: cpu1.server - cpu0.server, main: cpu1.main - cpu0.main, minio: cpu1.minio - cpu0.minio };
    const s3Requests = metricSum(metrics1, 'sluice_storage_requests_total') - metricSum(metrics0, 'sluice_storage_requests_total');
    const perUpload = Math.max(1, committed);
    console.log(
      `CPU during the run: server ${cpu.server.toFixed(1)} s (main thread ${cpu.main.toFixed(1)} s), ${backend === 's3' ? `MinIO ${cpu.minio.toFixed(1)} s` : 'no MinIO'}; ` +
        `per committed upload: service ${((cpu.server * 1000) / perUpload).toFixed(2)} ms` + (backend === 's3' ? `, S3 requests ${(s3Requests / perUpload).toFixed(2)}` : ''),
    );
    if (profDir) {
      const prof = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
      if (prof) {
        const split = await splitProfile(path.join(profDir, prof));
        const scale = (cpu.main * 1e6) / split.busyUs / perUpload;
        console.log(`main-thread CPU per upload by stage (profile proportions, scaled to the measured ${((cpu.main * 1e6) / perUpload).toFixed(0)} µs):`);
        for (const st of STAGES) {
          const v = split.us.get(st)!;
          if (v > 0) console.log(`  ${st.padEnd(58)} ${(v * scale).toFixed(1).padStart(8)} µs`);
        }
        const { copyFile } = await import('node:fs/promises');
        await copyFile(path.join(profDir, prof), cpuProf.replace(/(\.cpuprofile)?$/, `-${backend}.cpuprofile`));
      }
    }
    await healthAgent.close();
    const p50 = percentile(health, 50);
    const p99 = percentile(health, 99);
    if (connErrors.size > 0) console.log(`connection ends without an answer: ${[...connErrors].map(([c, n]) => `${c}=${n}`).join(' ')}`);
    console.log(`statuses: ${[...byStatus].map(([s, n]) => `${s || 'conn-error'}=${n}`).join(' ')}`);
    console.log(`wall ${wall.toFixed(1)} s; server peak RSS ${peak} MiB; /health samples=${health.length} errors=${healthErrors} p50=${p50.toFixed(1)} ms p99=${p99.toFixed(1)} ms max=${Math.max(...health).toFixed(1)} ms`);
    if (atPeak) {
      const rest = atPeak.rss - atPeak.heapTotal - atPeak.external;
      console.log(`memory at the highest sampled RSS (${atPeak.rss.toFixed(0)} MiB): V8 heap ${atPeak.heapTotal.toFixed(0)} MiB (used ${atPeak.heapUsed.toFixed(0)}), Buffers ${atPeak.external.toFixed(0)} MiB, native and allocator ${rest.toFixed(0)} MiB`);
    }
    console.log(`after: ${await loadNote()}`);
    const r: Record<string, string> = { backend, errors: String(errors), rss_mb: String(peak), health_p99_ms: p99.toFixed(1), server_cpu_s: cpu.server.toFixed(1) };
    if (backend === 's3') r.minio_cpu_s = cpu.minio.toFixed(1);
    r.service_cpu_ms_per_upload = ((cpu.server * 1000) / perUpload).toFixed(2);
    if (backend === 's3') r.s3_requests_per_upload = (s3Requests / perUpload).toFixed(2);
    if (atPeak) r.heap_at_peak_mb = atPeak.heapTotal.toFixed(0);
    console.log(`c10k ${Object.entries(r).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    return r;
  } finally {
    if (profDir) await rm(profDir, { recursive: true, force: true });
    await minio?.stop();
  }
}
