// `npm run bench:cli`: the sluice CLI against rclone and curl, side by side,
// on one MinIO started here, with the service running as a child process.
//
//   1. small files: the same tree of --files files (--min-kib..--max-kib)
//      copied by rclone straight to S3 (its defaults: --transfers 4
//      --checkers 8) and uploaded by `sluice upload` through the service (its
//      defaults, then at --concurrency 4 for equal concurrency). Files/s.
//   2. large files: --large-count files of --large-mib MiB, `curl -T` one
//      after another vs `sluice upload` of the directory. Throughput, and the
//      CLI's peak RSS (/usr/bin/time -f %M).
//
// Each measurement is the median of --runs runs; the tools alternate within
// a run so load changes hit both. Objects are deleted between runs.
// The service runs with jobs off; per small file it prints its CPU and the S3
// requests it sent (sluice_storage_requests_total from its /metrics).
// Ends with: RESULT cli small_files_ratio_vs_rclone=… small_files_per_s=… service_cpu_ms_per_file=… s3_requests_per_file=… large_ratio_vs_curl=… cli_rss_mb=…

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, DeleteObjectsCommand, S3Client, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { startMinio, type MinioServer } from '../scripts/minio.ts';
import { sluiceS3Env } from './lib/harness.ts';
import { metricSum, scrape } from './lib/proc-stats.ts';

const { values: o } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    'min-kib': { type: 'string', default: '1' },
    'max-kib': { type: 'string', default: '64' },
    'large-count': { type: 'string', default: '20' },
    'large-mib': { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    'skip-small': { type: 'boolean', default: false },
    'skip-large': { type: 'boolean', default: false },
  },
});
const FILES = Number(o.files);
const RUNS = Math.max(1, Number(o.runs));
const LARGE_COUNT = Number(o['large-count']);
const LARGE_BYTES = Number(o['large-mib']) * 1024 * 1024;
const ROOT = path.resolve(import.meta.dirname, '..');
// What an installed package runs: the compiled CLI (built below), not the
// type-stripped sources (stripping costs ~25 MB of RSS and start-up time).
const CLI_DIST = path.join(ROOT, 'dist/src/cli/main.js');
let CLI = '';

interface Timed {
  ms: number;
  rssKb?: number;
  /** User + system CPU seconds of the process. */
  cpuS?: number;
  stdout: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    // rclone refuses a CA bundle it cannot apply to its transport; nothing here uses TLS.
    delete childEnv.AWS_CA_BUNDLE;
    const child = spawn(cmd, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (code !== 0) reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')} … exited ${code}\n${stderr.slice(-2000)}\n${stdout.slice(-2000)}`));
      else resolve({ ms, stdout });
    });
  });
}

/** A command under /usr/bin/time, for its peak RSS and CPU time. */
async function timed(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Timed> {
  const timeFile = path.join(tmpdir(), `sluice-bench-time-${process.pid}`);
  const r = await run('/usr/bin/time', ['-f', '%M %U %S', '-o', timeFile, cmd, ...args], env);
  const [rss, user, sys] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  await rm(timeFile, { force: true });
  return { ...r, rssKb: rss!, cpuS: user! + sys! };
}

// With the V8 flag bin/sluice.js's shebang gives the installed command.
const runCli = (args: string[]) => timed(process.execPath, ['--max-semi-space-size=1', CLI, ...args]);

/** CPU seconds a running process has used so far (Linux /proc). */
async function cpuOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

async function minioPid(endpoint: string): Promise<number> {
  const r = await run('pgrep', ['-f', `address ${new URL(endpoint).host}`]);
  return Number(r.stdout.trim().split('\n')[0]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, d = 1) => n.toFixed(d);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function emptyBucket(s3: S3Client, bucket: string): Promise<void> {
  for await (const page of paginateListObjectsV2({ client: s3 }, { Bucket: bucket })) {
    const keys = (page.Contents ?? []).map((c) => ({ Key: c.Key! }));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
  }
}

async function startService(minio: MinioServer, bucket: string): Promise<{ url: string; pid: number; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'src/server.ts')], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...sluiceS3Env(minio, bucket),
      // The default per-IP limit (1,200 requests/min) would cap the CLI at 20 files/s: this
      // measures throughput, not the limiter (the CLI honours its 429s and Retry-After).
      SLUICE_RATE_LIMIT_PER_IP: '0',
      SLUICE_RATE_LIMIT_PER_SUBJECT: '0',
      // Ingest alone, as issue 10 states the target: a small file that gets no jobs costs the
      // service < 1.5 ms of CPU and S3 two requests (the text files would get gzip jobs).
      SLUICE_JOBS_POOL_SIZE: '0',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 200) throw new Error('service did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

async function smallTree(dir: string): Promise<number> {
  // Text content: allowed by the service's default type list, like most batch data.
  const pool = Buffer.from(randomBytes(96 * 1024).toString('base64'));
  const minB = Number(o['min-kib']) * 1024;
  const maxB = Number(o['max-kib']) * 1024;
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const d = path.join(dir, `d${String(i % 100).padStart(2, '0')}`);
    if (i < 100) await mkdir(d, { recursive: true });
    const size = minB + Math.floor(Math.random() * (maxB - minB + 1));
    const start = Math.floor(Math.random() * (pool.length - size));
    // A plain-text first line, so no random slice starts with some format's magic bytes ("MZ", "PK", ...).
    const head = Buffer.from(`bench file ${i}\n`);
    await writeFile(path.join(d, `f${i}.txt`), Buffer.concat([head, pool.subarray(start, start + size - head.length)]));
    bytes += size;
  }
  return bytes;
}

async function largeFiles(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  // gzip magic, then incompressible bytes: an allowed binary type, like the media a backfill carries.
  const body = randomBytes(LARGE_BYTES);
  const names: string[] = [];
  for (let i = 0; i < LARGE_COUNT; i++) {
    Buffer.from([0x1f, 0x8b, 0x08, 0x00, i & 0xff, (i >> 8) & 0xff]).copy(body);
    const name = `large-${i}.gz`;
    await writeFile(path.join(dir, name), body);
    names.push(name);
  }
  return names;
}

async function main(): Promise<void> {
  console.log(`bench:cli on ${new Date().toISOString()}, load average ${loadavg().map((l) => fmt(l, 2)).join(' ')}, node ${process.version}`);
  const work = await mkdtemp(path.join(tmpdir(), 'sluice-bench-cli-'));
  await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')]);
  CLI = path.join(work, 'sluice.mjs');
  await writeFile(CLI, `import { main } from ${JSON.stringify(CLI_DIST)};\nawait main();\n`);
  const minio = await startMinio();
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    forcePathStyle: true,
  });
  const sluiceBucket = 'bench-sluice';
  const rcloneBucket = 'bench-rclone';
  await s3.send(new CreateBucketCommand({ Bucket: sluiceBucket }));
  await s3.send(new CreateBucketCommand({ Bucket: rcloneBucket }));
  const service = await startService(minio, sluiceBucket);
  const rcloneEnv = {
    RCLONE_CONFIG: path.join(work, 'rclone.conf'), // empty: the remote comes from the variables below
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Minio',
    RCLONE_CONFIG_BENCH_ENDPOINT: minio.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: minio.accessKeyId,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: minio.secretAccessKey,
    RCLONE_CONFIG_BENCH_REGION: minio.region,
  };
  await writeFile(rcloneEnv.RCLONE_CONFIG, '');
  const result: Record<string, string> = {};
  try {
    if (!o['skip-small']) {
      const tree = path.join(work, 'small');
      const bytes = await smallTree(tree);
      console.log(`\nsmall files: ${FILES} files, ${fmt(bytes / 1024 / 1024)} MiB, ${o['min-kib']}-${o['max-kib']} KiB, ${RUNS} runs`);
      const t = { rclone: [] as number[], cli: [] as number[], cli4: [] as number[] };
      let rss = 0;
      const mpid = await minioPid(minio.endpoint);
      const perFileService: { cpuMs: number[]; s3: number[] } = { cpuMs: [], s3: [] };
      for (let r = 0; r < RUNS; r++) {
        const order = r % 2 === 0 ? (['rclone', 'cli', 'cli4'] as const) : (['cli4', 'cli', 'rclone'] as const);
        for (const tool of order) {
          const before = { service: await cpuOf(service.pid), minio: await cpuOf(mpid), requests: metricSum(await scrape(service.url), 'sluice_storage_requests_total') };
          let x: Timed;
          if (tool === 'rclone') {
            x = await timed('rclone', ['copy', tree, `bench:${rcloneBucket}/run${r}`], rcloneEnv);
          } else {
            const args = ['upload', tree, '--server', service.url, '--quiet', '--state', path.join(work, `state-${tool}-${r}.ndjson`), ...(tool === 'cli4' ? ['-c', '4'] : [])];
            x = await runCli(args);
            if (!x.stdout.includes(`uploaded ${FILES} files`)) throw new Error(`CLI did not upload every file:\n${x.stdout}`);
            rss = Math.max(rss, x.rssKb ?? 0);
          }
          t[tool].push(x.ms);
          const perFile = (s: number) => fmt((s * 1000) / FILES, 2);
          const cpu = { service: (await cpuOf(service.pid)) - before.service, minio: (await cpuOf(mpid)) - before.minio };
          const s3PerFile = (metricSum(await scrape(service.url), 'sluice_storage_requests_total') - before.requests) / FILES;
          if (tool !== 'rclone') {
            perFileService.cpuMs.push((cpu.service * 1000) / FILES);
            perFileService.s3.push(s3PerFile);
          }
          console.log(
            `  run ${r + 1} ${tool.padEnd(6)} ${fmt(x.ms / 1000, 2)} s  ${fmt(FILES / (x.ms / 1000))} files/s   CPU ms/file: client ${perFile(x.cpuS ?? 0)}` +
              (tool === 'rclone' ? '' : ` service ${perFile(cpu.service)}`) + ` minio ${perFile(cpu.minio)}` +
              (tool === 'rclone' ? '' : `   S3 requests/file ${fmt(s3PerFile, 2)}`) + `   load ${fmt(loadavg()[0]!, 2)}`,
          );
        }
        await emptyBucket(s3, sluiceBucket);
        await emptyBucket(s3, rcloneBucket);
      }
      const fps = (ms: number) => FILES / (ms / 1000);
      const rc = fps(median(t.rclone));
      const cli = fps(median(t.cli));
      const cli4 = fps(median(t.cli4));
      console.log(`  median files/s: rclone (defaults: --transfers 4 --checkers 8) ${fmt(rc)}, sluice (defaults: -c 8) ${fmt(cli)}, sluice -c 4 ${fmt(cli4)}`);
      console.log(`  ratio sluice/rclone at defaults ${fmt(cli / rc, 2)}, at equal concurrency (4) ${fmt(cli4 / rc, 2)}; CLI peak RSS ${fmt(rss / 1024)} MB`);
      result.small_files_ratio_vs_rclone = fmt(cli / rc, 2);
      result.small_files_ratio_equal_concurrency = fmt(cli4 / rc, 2);
      result.small_files_per_s = fmt(cli);
      result.rclone_files_per_s = fmt(rc);
      result.small_cli_rss_mb = fmt(rss / 1024);
      result.service_cpu_ms_per_file = fmt(median(perFileService.cpuMs), 2);
      result.s3_requests_per_file = fmt(median(perFileService.s3), 2);
      console.log(`  service per small file (no jobs), median over the CLI runs: CPU ${result.service_cpu_ms_per_file} ms, S3 requests ${result.s3_requests_per_file}`);
      await rm(tree, { recursive: true, force: true });
    }
    if (!o['skip-large']) {
      const dir = path.join(work, 'large');
      const names = await largeFiles(dir);
      const total = LARGE_COUNT * LARGE_BYTES;
      console.log(`\nlarge files: ${LARGE_COUNT} × ${fmt(LARGE_BYTES / 1024 / 1024, 0)} MiB, ${RUNS} runs`);
      const t = { curl: [] as number[], cli: [] as number[] };
      let rss = 0;
      for (let r = 0; r < RUNS; r++) {
        const order = r % 2 === 0 ? (['curl', 'cli'] as const) : (['cli', 'curl'] as const);
        for (const tool of order) {
          if (tool === 'curl') {
            const started = performance.now();
            for (const n of names) await run('curl', ['-sS', '-f', '-o', '/dev/null', '-T', path.join(dir, n), `${service.url}/v1/files/${n}`]);
            t.curl.push(performance.now() - started);
          } else {
            const x = await runCli(['upload', dir, '--server', service.url, '--quiet', '--state', path.join(work, `state-large-${r}.ndjson`)]);
            if (!x.stdout.includes(`uploaded ${LARGE_COUNT} files`)) throw new Error(`CLI did not upload every file:\n${x.stdout}`);
            t.cli.push(x.ms);
            rss = Math.max(rss, x.rssKb ?? 0);
          }
          const ms = t[tool].at(-1)!;
          console.log(`  run ${r + 1} ${tool.padEnd(4)} ${fmt(ms / 1000, 2)} s  ${fmt(total / 1024 / 1024 / (ms / 1000))} MiB/s`);
          await emptyBucket(s3, sluiceBucket);
        }
      }
      const curl = total / median(t.curl);
      const cli = total / median(t.cli);
      console.log(`  median MiB/s: curl -T sequential ${fmt((curl * 1000) / 1024 / 1024)}, sluice upload ${fmt((cli * 1000) / 1024 / 1024)}; ratio ${fmt(cli / curl, 2)}; CLI peak RSS ${fmt(rss / 1024)} MB`);
      result.large_ratio_vs_curl = fmt(cli / curl, 2);
      result.large_mib_per_s = fmt((cli * 1000) / 1024 / 1024);
      result.cli_rss_mb = fmt(rss / 1024);
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    service.stop();
    s3.destroy();
    await minio.stop();
    await rm(work, { recursive: true, force: true });
  }
  console.log(`load average at the end ${loadavg().map((l) => fmt(l, 2)).join(' ')}`);
  const keys = ['small_files_ratio_vs_rclone', 'small_files_per_s', 'service_cpu_ms_per_file', 's3_requests_per_file', 'large_ratio_vs_curl', 'cli_rss_mb', 'small_files_ratio_equal_concurrency', 'rclone_files_per_s', 'small_cli_rss_mb', 'large_mib_per_s'];
  console.log(`RESULT cli ${keys.filter((k) => k in result).map((k) => `${k}=${result[k]}`).join(' ')}`);
}

await main();
