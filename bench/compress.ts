// npm run bench:compress — MB/s of the compression jobs' zlib streams at the
// levels sluice uses and their neighbours, on log-like text, plus aggregate
// MB/s of 4 parallel streams under UV_THREADPOOL_SIZE 1, 2 and 4 (zlib work
// runs on libuv's threadpool). Prints the table behind docs/jobs.md.
//
// BENCH_MB (32) input size, BENCH_RUNS (3).

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { compressor } from '../workers/compress.ts';
import type { CompressAlgorithm } from '../src/core/jobs.ts';

const MB = Number(process.env.BENCH_MB ?? 32);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function logText(bytes: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const line = `2026-11-25T13:${String(i % 60).padStart(2, '0')}:${String(i % 59).padStart(2, '0')}Z INFO http request id=${randomBytes(6).toString('hex')} path=/v1/files/${i % 977} status=${i % 13 === 0 ? 404 : 200} bytes=${(i * 7919) % 100000} ms=${i % 250}\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function once(input: Buffer, algo: CompressAlgorithm, level: number): Promise<{ ms: number; out: number }> {
  let out = 0;
  const t = performance.now();
  await pipeline(
    Readable.from((function* () {
      for (let o = 0; o < input.length; o += 64 * 1024) yield input.subarray(o, o + 64 * 1024);
    })()),
    compressor(algo, level, input.length),
    new Writable({ write(c: Buffer, _e, cb) { out += c.length; cb(); } }),
  );
  return { ms: performance.now() - t, out };
}

if (process.argv[2] === '--parallel') {
  // Child: 4 parallel gzip-6 + zstd-3 streams, aggregate MB/s.
  const input = logText(MB * 1024 * 1024 / 2);
  for (const [algo, level] of [['gzip', 6], ['brotli', 5], ['zstd', 3]] as const) {
    const t = performance.now();
    await Promise.all(Array.from({ length: 4 }, () => once(input, algo, level)));
    process.stdout.write(`${algo}-${level}:${((4 * input.length) / 1e6 / ((performance.now() - t) / 1000)).toFixed(1)} `);
  }
  process.exit(0);
}

console.log(`bench:compress  node ${process.version}  load ${loadavg().map((l) => l.toFixed(2)).join(' ')}  input ${MB} MB log-like text, ${RUNS} runs (median)`);
const input = logText(MB * 1024 * 1024);
const levels: [CompressAlgorithm, number, boolean][] = [
  ['gzip', 1, false], ['gzip', 6, true], ['gzip', 9, false],
  ['brotli', 1, false], ['brotli', 5, true], ['brotli', 9, false], ['brotli', 11, false],
  ['zstd', 1, false], ['zstd', 3, true], ['zstd', 9, false], ['zstd', 19, false],
];
const results: string[] = [];
for (const [algo, level, chosen] of levels) {
  // Slow levels get a slice, so the run stays short; MB/s is per input byte either way.
  const slice = level >= 11 || (algo === 'zstd' && level >= 19) ? input.subarray(0, Math.min(input.length, 4 * 1024 * 1024)) : input;
  const runs = [];
  let out = 0;
  for (let r = 0; r < RUNS; r++) {
    const x = await once(slice, algo, level);
    runs.push(x.ms);
    out = x.out;
  }
  const mbps = slice.length / 1e6 / (median(runs) / 1000);
  const line = `  ${`${algo} ${level}`.padEnd(10)} ${mbps.toFixed(1).padStart(7)} MB/s  ratio ${(out / slice.length).toFixed(3)}${chosen ? '  <- sluice' : ''}`;
  console.log(line);
  results.push(`${algo}${level}=${mbps.toFixed(1)}`);
}
console.log('4 parallel streams (aggregate MB/s) by UV_THREADPOOL_SIZE:');
const self = fileURLToPath(import.meta.url);
const par: string[] = [];
for (const uv of [1, 2, 4]) {
  const r = spawnSync(process.execPath, [self, '--parallel'], { env: { ...process.env, UV_THREADPOOL_SIZE: String(uv) }, encoding: 'utf8' });
  console.log(`  UV_THREADPOOL_SIZE=${uv}: ${r.stdout.trim()}`);
  par.push(`uv${uv}_${r.stdout.trim().split(' ').map((s) => s.replace(':', '=')).join(',')}`);
}
console.log(`RESULT compress ${results.join(' ')} ${par.join(' ')}`);
