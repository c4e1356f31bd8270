// npm run bench:tus — one 1 GiB upload three ways, side by side in one run,
// all against the same MinIO and from the same client code:
//   put   PUT /v1/files/:name, one request (sluice's plain path)
//   tus   sluice's tus endpoint, 8 MiB PATCHes (sniff at the first PATCH,
//         bucket lock per PATCH, read-back sha256 and manifest at the end)
//   tusp  the same with SLUICE_TUS_LOCK=process (single instance / sticky
//         routing): shows what the bucket lock costs
//   tusd  the reference tus server with its S3 store, same 8 MiB PATCHes
//   draft sluice's IETF resumable-upload draft (interop 8) on the tus instance:
//         creation with Upload-Length, 8 MiB application/partial-upload appends
// then a drop at 50%: the connection is cut halfway through a PATCH, and the
// bench measures the time until the upload can continue and the bytes the
// client has to send again. Peak RSS is the kernel's VmHWM of each server.
//
// Knobs for a quick look: BENCH_SIZE_MB (1024), BENCH_RUNS (3), BENCH_PATCH_MB (8);
// BENCH_JOBS=1 runs the servers with their default image jobs on.
// tusd: `bash scripts/install-minio.sh --with-tusd` (or TUSD_BIN).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { request } from 'undici';
import { startMinio } from '../scripts/minio.ts';
import { procMemMiB, sluiceS3Env } from './lib/harness.ts';
import { freePort, median, startService } from './lib/service.ts';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_SIZE_MB ?? 1024) * MiB;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PATCH = Number(process.env.BENCH_PATCH_MB ?? 8) * MiB;
const root = path.resolve(import.meta.dirname, '..');

// ---- payload: a real PNG head, then a repeated random block; any byte range on demand ----
const BLOCK = randomBytes(4 * MiB);
const HEAD = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } }).png().toBuffer();

async function* bytes(start: number, end: number, chunk = 256 * 1024): AsyncGenerator<Buffer> {
  let i = start;
  if (i < HEAD.length) {
    const n = Math.min(HEAD.length, end) - i;
    yield HEAD.subarray(i, i + n);
    i += n;
  }
  while (i < end) {
    const at = (i - HEAD.length) % BLOCK.length;
    const n = Math.min(chunk, end - i, BLOCK.length - at);
    yield BLOCK.subarray(at, at + n);
    i += n;
  }
}
async function sha256Of(size: number): Promise<string> {
  const h = createHash('sha256');
  for await (const b of bytes(0, size, 4 * MiB)) h.update(b);
  return h.digest('hex');
}

// ---- processes ----
interface Proc {
  url: string;
  child: ChildProcess;
  peakRssMb(): Promise<number>;
  rssMb(): Promise<number>;
  stop(): Promise<void>;
}

async function startProc(cmd: string, args: string[], env: Record<string, string>, port: number, probe: string): Promise<Proc> {
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${url}${probe}`, { method: probe.startsWith('/files') ? 'OPTIONS' : 'GET' });
      if (r.status < 500) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${cmd} did not start`);
    await sleep(100);
  }
  return {
    url,
    child,
    peakRssMb: () => procMemMiB(child.pid!, 'VmHWM'),
    rssMb: () => procMemMiB(child.pid!, 'VmRSS'),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

function withRss(svc: Awaited<ReturnType<typeof startService>>): Proc {
  return {
    ...svc,
    rssMb: () => procMemMiB(svc.child.pid!, 'VmRSS'),
  };
}

function findTusd(): string {
  const candidates = [process.env.TUSD_BIN, path.join(execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).trim().split(':')[0]!, 'bin', 'tusd')];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new Error('tusd not found: bash scripts/install-minio.sh --with-tusd (or set TUSD_BIN)');
}

// ---- clients ----
async function putOnce(base: string, size: number): Promise<number> {
  const t = performance.now();
  const res = await request(`${base}/v1/files/bench.png`, {
    method: 'PUT',
    body: Readable.from(bytes(0, size)),
    headers: { 'content-length': String(size), 'content-type': 'image/png' },
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT answered ${res.statusCode}: ${text}`);
  return (performance.now() - t) / 1000;
}

const TUS = { 'tus-resumable': '1.0.0' };

async function tusCreate(endpoint: string, size: number): Promise<string> {
  const meta = `filename ${Buffer.from('bench.png').toString('base64')},filetype ${Buffer.from('image/png').toString('base64')}`;
  const res = await request(endpoint, { method: 'POST', headers: { ...TUS, 'upload-length': String(size), 'upload-metadata': meta } });
  await res.body.text();
  if (res.statusCode !== 201) throw new Error(`create answered ${res.statusCode}`);
  return new URL(String(res.headers.location), endpoint).toString();
}

async function tusPatch(url: string, start: number, end: number): Promise<{ offset: number; headers: Record<string, unknown> }> {
  const res = await request(url, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(start), 'content-type': 'application/offset+octet-stream', 'content-length': String(end - start) },
    body: Readable.from(bytes(start, end)),
  });
  const text = await res.body.text();
  if (res.statusCode !== 204) throw new Error(`PATCH @${start} answered ${res.statusCode}: ${text}`);
  return { offset: Number(res.headers['upload-offset']), headers: res.headers };
}

async function tusHead(url: string): Promise<number> {
  const res = await request(url, { method: 'HEAD', headers: TUS });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`HEAD answered ${res.statusCode}`);
  return Number(res.headers['upload-offset']);
}

async function tusOnce(endpoint: string, size: number): Promise<{ seconds: number; fileId: string }> {
  const t = performance.now();
  const url = await tusCreate(endpoint, size);
  let offset = 0;
  let last: Record<string, unknown> = {};
  while (offset < size) {
    const r = await tusPatch(url, offset, Math.min(size, offset + PATCH));
    offset = r.offset;
    last = r.headers;
  }
  return { seconds: (performance.now() - t) / 1000, fileId: String(last['sluice-file-id'] ?? '') };
}

// ---- the IETF resumable-upload draft (docs/resumable.md) ----
const DRAFT = { 'upload-draft-interop-version': '8' };

async function draftOnce(endpoint: string, size: number): Promise<{ seconds: number; fileId: string }> {
  const t = performance.now();
  const made = await request(endpoint, {
    method: 'POST',
    headers: { ...DRAFT, 'upload-complete': '?0', 'upload-length': String(size), 'content-type': 'image/png', 'content-disposition': 'inline; filename="bench.png"' },
  });
  await made.body.text();
  if (made.statusCode !== 201) throw new Error(`draft create answered ${made.statusCode}`);
  const url = new URL(String(made.headers.location), endpoint).toString();
  let offset = 0;
  let fileId = '';
  while (offset < size) {
    const end = Math.min(size, offset + PATCH);
    const res = await request(url, {
      method: 'PATCH',
      headers: { ...DRAFT, 'upload-complete': end === size ? '?1' : '?0', 'upload-offset': String(offset), 'content-type': 'application/partial-upload', 'content-length': String(end - offset) },
      body: Readable.from(bytes(offset, end)),
    });
    const text = await res.body.text();
    if (res.statusCode !== (end === size ? 200 : 204)) throw new Error(`draft append @${offset} answered ${res.statusCode}: ${text}`);
    offset = Number(res.headers['upload-offset']);
    fileId = String(res.headers['sluice-file-id'] ?? '');
  }
  return { seconds: (performance.now() - t) / 1000, fileId };
}

/** Upload to 50%, cut the connection halfway through the PATCH that crosses it, resume. */
async function dropAndResume(endpoint: string, size: number): Promise<{ resumeMs: number; resentBytes: number; lostBytes: number; fileId: string }> {
  const url = await tusCreate(endpoint, size);
  const half = Math.floor(size / 2);
  const dropStart = Math.floor((half - PATCH / 2) / PATCH) * PATCH; // a PATCH that spans the 50% mark
  let offset = 0;
  while (offset < dropStart) offset = (await tusPatch(url, offset, Math.min(dropStart, offset + PATCH))).offset;
  const lastAcked = offset;
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(`PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: ${offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${PATCH}\r\n\r\n`);
  for await (const b of bytes(offset, half)) {
    if (!sock.write(b)) await new Promise((r) => sock.once('drain', r));
  }
  await sleep(200); // the bytes are on the wire to the server
  const sent = half;
  const dropped = performance.now();
  sock.destroy();
  // Resume like a tus client: HEAD, then PATCH from there; a 409 means the dropped request was still settling.
  let resumed = 0;
  let resumeMs = 0;
  for (let attempt = 0; attempt < 200; attempt++) {
    resumed = await tusHead(url);
    const res = await request(url, {
      method: 'PATCH',
      headers: { ...TUS, 'upload-offset': String(resumed), 'content-type': 'application/offset+octet-stream', 'content-length': '0' },
    });
    await res.body.text();
    if (res.statusCode === 204) {
      resumeMs = performance.now() - dropped;
      break;
    }
    await sleep(20);
  }
  offset = resumed;
  let last: Record<string, unknown> = {};
  while (offset < size) {
    const r = await tusPatch(url, offset, Math.min(size, offset + PATCH));
    offset = r.offset;
    last = r.headers;
  }
  return { resumeMs, resentBytes: Math.max(0, sent - resumed), lostBytes: Math.max(0, sent - Math.max(resumed, lastAcked)), fileId: String(last['sluice-file-id'] ?? '') };
}

const mbps = (size: number, s: number) => size / MiB / s;

/** Every S3 request MinIO has served so far (its v3 metrics, public for this MinIO only). */
async function s3Requests(): Promise<number> {
  const text = await (await fetch(`${minio.endpoint}/minio/metrics/v3/api/requests`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^minio_api_requests_total\{[^}]*\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/.exec(line);
    if (m) n += Number(m[1]);
  }
  return n;
}

// ---- run ----
const tusdBin = findTusd();
// MinIO's request counters, readable without a token: S3 requests per GiB for each path.
process.env.MINIO_PROMETHEUS_AUTH_TYPE ??= 'public';
const minio = await startMinio();
const bucket = 'bench-tus';
const client = new S3Client({
  endpoint: minio.endpoint,
  region: minio.region,
  forcePathStyle: true,
  credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
});
await client.send(new CreateBucketCommand({ Bucket: bucket }));
const sluiceEnv = {
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  ...sluiceS3Env(minio, bucket),
  SLUICE_S3_PART_SIZE: String(8 * MiB),
  SLUICE_MAX_FILE_BYTES: String(SIZE + MiB),
  SLUICE_TUS_SWEEP_INTERVAL_MS: '0',
  // The upload paths alone, as in bench:upload: each finished 1 GiB PNG would otherwise get the
  // default thumbnail job, whose CPU overlaps the next runs and whose memory (a pool thread, libvips)
  // is bench:pool's subject, not this one's. BENCH_JOBS=1 keeps them.
  ...(process.env.BENCH_JOBS === '1' ? {} : { SLUICE_JOBS_POOL_SIZE: '0' }),
};
const procs: Proc[] = [];
try {
  const tusdPort = await freePort();
  // Separate sluice processes (what `npm start` runs: compiled dist/, same V8 flags), so each path's peak RSS is its own.
  const put = withRss(await startService(sluiceEnv));
  procs.push(put);
  const tus = withRss(await startService(sluiceEnv));
  procs.push(tus);
  const tusp = withRss(await startService({ ...sluiceEnv, SLUICE_TUS_LOCK: 'process' }));
  procs.push(tusp);
  const tusd = await startProc(
    tusdBin,
    ['-host', '127.0.0.1', '-port', String(tusdPort), '-base-path', '/files/', '-s3-bucket', bucket, '-s3-endpoint', minio.endpoint, '-s3-part-size', String(8 * MiB), '-s3-disable-ssl', '-disable-download', '-verbose=false'],
    { AWS_ACCESS_KEY_ID: minio.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.secretAccessKey, AWS_REGION: minio.region },
    tusdPort,
    '/files/',
  );
  procs.push(tusd);

  const idle = { put: await put.rssMb(), tus: await tus.rssMb(), tusd: await tusd.rssMb() };
  console.log(`# bench:tus  size=${SIZE / MiB} MiB  runs=${RUNS}  patch=${PATCH / MiB} MiB  part=8 MiB  load=${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const expected = await sha256Of(SIZE);
  // Warm-up: JIT, connections, buckets.
  await putOnce(put.url, 16 * MiB);
  await tusOnce(`${tus.url}/v1/uploads`, 16 * MiB);
  await tusOnce(`${tusd.url}/files/`, 16 * MiB);

  await tusOnce(`${tusp.url}/v1/uploads`, 16 * MiB);
  await draftOnce(`${tus.url}/v1/uploads`, 16 * MiB);
  const times = { put: [] as number[], tus: [] as number[], tusp: [] as number[], tusd: [] as number[], draft: [] as number[] };
  const requests = { put: [] as number[], tus: [] as number[], tusp: [] as number[], tusd: [] as number[], draft: [] as number[] };
  const order: (keyof typeof times)[] = ['put', 'tus', 'tusp', 'tusd', 'draft'];
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(run + k) % order.length]!;
      let s: number;
      const before = await s3Requests();
      if (which === 'put') s = await putOnce(put.url, SIZE);
      else if (which === 'tus' || which === 'tusp') {
        const svc = which === 'tus' ? tus : tusp;
        const r = await tusOnce(`${svc.url}/v1/uploads`, SIZE);
        requests[which].push((await s3Requests()) - before);
        const file = await request(`${svc.url}/v1/files/${r.fileId}`);
        const view = (await file.body.json()) as { sha256: string };
        if (view.sha256 !== expected) throw new Error('sluice tus: sha256 differs from the source');
        s = r.seconds;
      } else if (which === 'draft') {
        const r = await draftOnce(`${tus.url}/v1/uploads`, SIZE);
        requests.draft.push((await s3Requests()) - before);
        const view = (await (await request(`${tus.url}/v1/files/${r.fileId}`)).body.json()) as { sha256: string };
        if (view.sha256 !== expected) throw new Error('sluice draft: sha256 differs from the source');
        s = r.seconds;
      } else s = (await tusOnce(`${tusd.url}/files/`, SIZE)).seconds;
      if (which === 'put' || which === 'tusd') requests[which].push((await s3Requests()) - before);
      times[which].push(s);
      console.log(`run ${run + 1} ${which.padEnd(5)} ${s.toFixed(2)} s  ${mbps(SIZE, s).toFixed(1)} MiB/s  load=${loadavg()[0]!.toFixed(2)}`);
    }
  }
  const m = { put: median(times.put), tus: median(times.tus), tusp: median(times.tusp), tusd: median(times.tusd), draft: median(times.draft) };
  const gib = SIZE / (1024 * MiB);
  const perGiB = (k: keyof typeof requests) => (median(requests[k]) / gib).toFixed(0);
  const ratioPut = m.put / m.tus;
  const ratioTusd = m.tusd / m.tus;

  // What the read-back costs when a finish cannot use the carried digest (PATCHes spread over instances):
  // one streaming read of the whole original with sha256, measured here as a GET of the committed file.
  const lastTus = await tusOnce(`${tus.url}/v1/uploads`, SIZE);
  const rb = performance.now();
  // Served by the PUT instance (same bucket), so the tus instance's peak RSS stays that of tus work.
  const got = await request(`${put.url}/v1/files/${lastTus.fileId}/content`);
  const h = createHash('sha256');
  for await (const b of got.body) h.update(b as Buffer);
  if (h.digest('hex') !== expected) throw new Error('read-back differs');
  const readBackS = (performance.now() - rb) / 1000;

  const drop = await dropAndResume(`${tus.url}/v1/uploads`, SIZE);
  const dropView = (await (await request(`${tus.url}/v1/files/${drop.fileId}`)).body.json()) as { sha256: string };
  if (dropView.sha256 !== expected) throw new Error('sluice tus after drop: sha256 differs from the source');
  const dropTusd = await dropAndResume(`${tusd.url}/files/`, SIZE);

  const rss = { put: await put.peakRssMb(), tus: await tus.peakRssMb(), tusp: await tusp.peakRssMb(), tusd: await tusd.peakRssMb() };
  console.log('');
  console.log(`median put   ${m.put.toFixed(2)} s  ${mbps(SIZE, m.put).toFixed(1)} MiB/s  peak RSS ${rss.put} MB (idle ${idle.put} MB)`);
  console.log(`median tus   ${m.tus.toFixed(2)} s  ${mbps(SIZE, m.tus).toFixed(1)} MiB/s  peak RSS ${rss.tus} MB (idle ${idle.tus} MB)  (incl. sniff, sha256, lock, manifest)`);
  console.log(`median tusp  ${m.tusp.toFixed(2)} s  ${mbps(SIZE, m.tusp).toFixed(1)} MiB/s  peak RSS ${rss.tusp} MB  (SLUICE_TUS_LOCK=process: no bucket lock)`);
  console.log(`median tusd  ${m.tusd.toFixed(2)} s  ${mbps(SIZE, m.tusd).toFixed(1)} MiB/s  peak RSS ${rss.tusd} MB (idle ${idle.tusd} MB)`);
  console.log(`median draft ${m.draft.toFixed(2)} s  ${mbps(SIZE, m.draft).toFixed(1)} MiB/s  (IETF draft on the tus instance; its RSS is in tus's)`);
  console.log(`read-back of the whole original (the finish's fallback when PATCHes spread over instances): ${readBackS.toFixed(2)} s, ${mbps(SIZE, readBackS).toFixed(1)} MiB/s`);
  console.log(`tus/put throughput ratio ${ratioPut.toFixed(3)}   tus/tusd throughput ratio ${ratioTusd.toFixed(3)}`);
  console.log(`without the bucket lock: tus/put ${(m.put / m.tusp).toFixed(3)}   tus/tusd ${(m.tusd / m.tusp).toFixed(3)}`);
  console.log(`drop at 50%: sluice resumed after ${drop.resumeMs.toFixed(0)} ms, re-sent ${drop.resentBytes} bytes; tusd resumed after ${dropTusd.resumeMs.toFixed(0)} ms, re-sent ${dropTusd.resentBytes} bytes`);
  console.log(`S3 requests per GiB: put ${perGiB('put')}  tus ${perGiB('tus')}  tusp ${perGiB('tusp')}  tusd ${perGiB('tusd')}`);
  console.log(`load at end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(
    `RESULT tus ratio_vs_put=${ratioPut.toFixed(3)} ratio_vs_tusd=${ratioTusd.toFixed(3)} rss_mb=${rss.tus} idle_rss_mb=${idle.tus} resent_bytes=${drop.resentBytes} resume_ms=${drop.resumeMs.toFixed(0)} readback_s=${readBackS.toFixed(2)} ratio_vs_put_process_lock=${(m.put / m.tusp).toFixed(3)} ratio_vs_tusd_process_lock=${(m.tusd / m.tusp).toFixed(3)} tus_mibps=${mbps(SIZE, m.tus).toFixed(1)} put_mibps=${mbps(SIZE, m.put).toFixed(1)} tusd_mibps=${mbps(SIZE, m.tusd).toFixed(1)} s3_requests_per_gib=${perGiB('tus')} tusd_s3_requests_per_gib=${perGiB('tusd')} put_s3_requests_per_gib=${perGiB('put')} draft_mibps=${mbps(SIZE, m.draft).toFixed(1)} ratio_draft_vs_tus=${(m.tus / m.draft).toFixed(3)} draft_s3_requests_per_gib=${perGiB('draft')}`,
  );
} finally {
  for (const p of procs) await p.stop();
  client.destroy();
  await minio.stop();
}
