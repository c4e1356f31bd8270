// Shared by the ops benches: an S3 server (a MinIO started for the run, as
// `npm test` does), the real server as a child process, payloads, figures.

import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { startMinio, type MinioServer } from '../../scripts/minio.ts';

export const MiB = 1024 * 1024;

/**
 * The abuse limits (issue 5) are per client IP and per tenant, and every bench
 * client is one IP and one tenant: lift them, or the benches would measure 429s.
 */
export const BENCH_ENV: Record<string, string> = {
  SLUICE_RATE_LIMIT_PER_IP: '0',
  SLUICE_RATE_LIMIT_PER_SUBJECT: '0',
  SLUICE_TENANT_MAX_CONCURRENT_UPLOADS: '0',
  SLUICE_MAX_CONNECTIONS: '0',
};

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** The environment that points a sluice at `bucket` on `minio` (path-style, its own credentials); `endpoint` may be a proxy in front of it. */
export function sluiceS3Env(minio: MinioServer, bucket: string, endpoint = minio.endpoint): Record<string, string> {
  return {
    SLUICE_STORAGE: 's3',
    SLUICE_S3_ENDPOINT: endpoint,
    SLUICE_S3_BUCKET: bucket,
    SLUICE_S3_REGION: minio.region,
    SLUICE_S3_ACCESS_KEY_ID: minio.accessKeyId,
    SLUICE_S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
    SLUICE_S3_FORCE_PATH_STYLE: 'true',
  };
}

/** Start MinIO when the backend is s3 and export it the way test/helpers/s3.ts expects. */
export async function s3ForBench(backend: string): Promise<MinioServer | undefined> {
  if (backend !== 's3') return undefined;
  const minio = await startMinio();
  Object.assign(process.env, {
    S3_TEST_ENDPOINT: minio.endpoint,
    S3_TEST_ACCESS_KEY_ID: minio.accessKeyId,
    S3_TEST_SECRET_ACCESS_KEY: minio.secretAccessKey,
    S3_TEST_REGION: minio.region,
  });
  return minio;
}

let pngHead: Buffer | undefined;
/** A PNG header (so the upload is an allowed type) followed by random bytes. */
export async function payloadHead(): Promise<Buffer> {
  pngHead ??= await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3366cc' } }).png().toBuffer();
  return pngHead;
}

/**
 * A throttled upload body of `size` bytes: `chunk` bytes every `everyMs`. The
 * sha256 of what was sent is in `hash` once the generator finishes.
 */
export function slowBody(head: Buffer, size: number, chunk: number, everyMs: number) {
  const hash = createHash('sha256');
  const state = { sha256: '', sent: 0 };
  async function* gen(): AsyncGenerator<Buffer> {
    let first = true;
    while (state.sent < size) {
      const n = Math.min(chunk, size - state.sent);
      const b = first ? Buffer.concat([head, randomBytes(Math.max(0, n - head.length))]).subarray(0, n) : randomBytes(n);
      first = false;
      hash.update(b);
      state.sent += b.length;
      // Before the last yield: a client that knows the length may never ask for more.
      if (state.sent >= size) state.sha256 = hash.digest('hex');
      yield b;
      if (everyMs > 0) await new Promise((r) => setTimeout(r, everyMs));
    }
  }
  return { body: gen(), state };
}

/** Samples a process's peak RSS every `everyMs` until stopped (VmHWM is gone once the process exits). */
export function rssSampler(pid: number, everyMs = 200): { stop(): Promise<number> } {
  let peak = 0;
  const timer = setInterval(() => void peakRssMiB(pid).then((v) => (peak = Math.max(peak, v))), everyMs);
  return {
    async stop() {
      clearInterval(timer);
      peak = Math.max(peak, await peakRssMiB(pid));
      return peak;
    },
  };
}

/** A memory field of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current), in MiB; 0 when unreadable. */
export async function procMemMiB(pid: number, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Peak resident set size of a process (VmHWM), in MiB; 0 when unreadable. */
export const peakRssMiB = (pid: number): Promise<number> => procMemMiB(pid, 'VmHWM');

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export async function loadNote(): Promise<string> {
  const l = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  return `loadavg ${l}`;
}

/**
 * Upload rate against a running server: `concurrency` keep-alive clients PUT
 * `size`-byte files back to back for `durationMs`. Returns uploads/s and errors.
 */
export async function uploadRate(url: string, opts: { size: number; concurrency: number; durationMs: number }): Promise<{ rate: number; errors: number; mibps: number }> {
  const { Agent, request } = await import('undici');
  const head = await payloadHead();
  const body = Buffer.concat([head, randomBytes(Math.max(0, opts.size - head.length))]);
  const agent = new Agent({ connections: opts.concurrency, pipelining: 1 });
  let done = 0;
  let errors = 0;
  const end = performance.now() + opts.durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const res = await request(`${url}/v1/files/r.png`, { method: 'PUT', body, dispatcher: agent });
          await res.body.text();
          if (res.statusCode === 201) done++;
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  await agent.close();
  return { rate: done / secs, errors, mibps: (done * opts.size) / MiB / secs };
}
