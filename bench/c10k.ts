// bench:c10k — N clients (default 10,000) each upload 64 KiB slowly over ~20 s
// to one server process on the S3 backend. Reports errors, the server's peak
// RSS and /health latency (p99) measured throughout by a separate poller.
//
//   npm run bench:c10k -- [--clients 10000] [--seconds 20] [--backend s3|fs]
//
// Needs ~N file descriptors on each side: the limit is raised for the child
// processes with `ulimit -n` (up to the hard limit), never in the code.

import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { startChild } from '../test/helpers/child-server.ts';
import { arg, BENCH_ENV, loadNote, payloadHead, percentile, rssSampler, s3ForBench } from './lib/harness.ts';

const clients = Number(arg('clients', '10000'));
const seconds = Number(arg('seconds', '20'));
const backend = arg('backend', 's3') as 's3' | 'fs';
const SIZE = 64 * 1024;
const CHUNKS = 16;
const RAMP_MS = 5000;
/** Why connections ended without an answer, by error code ('closed' when the server just closed). */
const connErrors = new Map<string, number>();


// The client side needs a descriptor per connection: re-run under a raised limit.
if (!process.env.SLUICE_BENCH_ULIMIT) {
  const child = spawn('sh', ['-c', `ulimit -n $(ulimit -Hn) && exec "$0" "$@"`, process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, SLUICE_BENCH_ULIMIT: '1' },
  });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
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

async function main(): Promise<void> {
  const minio = await s3ForBench(backend);
  try {
    console.log(`bench:c10k clients=${clients} upload=${SIZE / 1024}KiB over ~${seconds}s backend=${backend}; ${await loadNote()}`);
    const srv = await startChild({
      backend,
      label: 'bench-c10k',
      env: { ...BENCH_ENV, LOG_LEVEL: 'info', SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: String(10 * seconds * 1000), SLUICE_UPLOAD_IDLE_TIMEOUT_MS: String(seconds * 1000) },
      wrap: 'ulimit -n $(ulimit -Hn) && exec "$0" "$@"',
    });
    const rss = rssSampler(srv.proc.pid!);
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

    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: clients }, (_, i) => upload(srv.port, head, (i / clients) * RAMP_MS)));
    const wall = (performance.now() - started) / 1000;
    polling = false;
    await poller;
    const peak = await rss.stop();
    const byStatus = new Map<number, number>();
    for (const s of statuses) byStatus.set(s, (byStatus.get(s) ?? 0) + 1);
    const errors = statuses.filter((s) => s !== 201).length;
    srv.proc.kill('SIGTERM');
    await srv.exited;
    const failures = new Map<string, number>();
    for (const l of srv.logs) {
      const code = (l.upload as { outcome?: string } | undefined)?.outcome ?? (Number(l.level) >= 40 ? String(l.msg) : undefined);
      if (code && code !== 'committed') failures.set(code, (failures.get(code) ?? 0) + 1);
    }
    if (failures.size > 0) console.log(`server-side failures: ${[...failures].map(([c, n]) => `${c}=${n}`).join(' ')}`);
    await srv.cleanup();
    await healthAgent.close();
    const p50 = percentile(health, 50);
    const p99 = percentile(health, 99);
    if (connErrors.size > 0) console.log(`connection ends without an answer: ${[...connErrors].map(([c, n]) => `${c}=${n}`).join(' ')}`);
    console.log(`statuses: ${[...byStatus].map(([s, n]) => `${s || 'conn-error'}=${n}`).join(' ')}`);
    console.log(`wall ${wall.toFixed(1)} s; server peak RSS ${peak} MiB; /health samples=${health.length} errors=${healthErrors} p50=${p50.toFixed(1)} ms p99=${p99.toFixed(1)} ms max=${Math.max(...health).toFixed(1)} ms`);
    console.log(`after: ${await loadNote()}`);
    console.log(`RESULT c10k clients=${clients} errors=${errors} rss_mb=${peak} health_p99_ms=${p99.toFixed(1)}`);
  } finally {
    await minio?.stop();
  }
}
