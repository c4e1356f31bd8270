// Malformed-request fuzzing, shared by test/fuzz.test.ts (20,000 requests) and
// bench/fuzz.ts (100,000). Every generated request is built to be refused: a
// multipart body always starts with a `sha256` field that no file can match,
// and raw uploads carry a Content-Digest no body can match, so whatever a
// mutation leaves parseable still ends in a 4xx. Requests go over raw TCP so
// that framing lies (wrong Content-Length, broken chunking) reach the server
// as sent. The server is a real child process (`node src/server.ts`), so a
// crash is seen as an exit and RSS and open fds are read from /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { hsEnv, hsToken } from './auth.ts';
import { TEST_SERVER_ENV } from './test-env.ts';

// ---------------------------------------------------------------- generator

/** mulberry32: a small seeded PRNG, so a failing case can be replayed by index. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Samples {
  jpeg: Buffer;
  png: Buffer;
  webp: Buffer;
  mkv: Buffer;
  asf: Buffer;
}

export async function makeSamples(): Promise<Samples> {
  const img = sharp({ create: { width: 24, height: 16, channels: 3, background: '#33aa77' } });
  const ebml = (id: number[], payload: Buffer) => Buffer.concat([Buffer.from(id), Buffer.from([0x80 | payload.length]), payload]);
  const header = Buffer.concat([
    ebml([0x42, 0x86], Buffer.from([1])),
    ebml([0x42, 0xf7], Buffer.from([1])),
    ebml([0x42, 0xf2], Buffer.from([4])),
    ebml([0x42, 0xf3], Buffer.from([8])),
    ebml([0x42, 0x82], Buffer.from('matroska')),
    ebml([0x42, 0x87], Buffer.from([4])),
    ebml([0x42, 0x85], Buffer.from([2])),
  ]);
  const mkv = Buffer.concat([
    Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80 | header.length]),
    header,
    Buffer.from([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    randomBytes(2000),
  ]);
  const guid = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const streamProps = Buffer.concat([guid('9107DCB7B7A9CF118EE600C00C205365'), u64(24 + 16 + 60), guid('409E69F84D5BCF11A8FD00805F5C442B'), Buffer.alloc(60)]);
  const asfHeader = Buffer.concat([guid('3026B2758E66CF11A6D900AA0062CE6C'), u64(30 + streamProps.length), Buffer.from([1, 0, 0, 0, 1, 2]), streamProps]);
  const asf = Buffer.concat([asfHeader, randomBytes(2000)]);
  return {
    jpeg: await img.clone().jpeg().toBuffer(),
    png: await img.clone().png().toBuffer(),
    webp: await img.clone().webp().toBuffer(),
    mkv,
    asf,
  };
}

function mutate(buf: Buffer, rnd: () => number): Buffer {
  const b = Buffer.from(buf);
  const ops = 1 + Math.floor(rnd() * 8);
  let out = b;
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rnd() * out.length);
    switch (Math.floor(rnd() * 6)) {
      case 0: // flip a byte
        out[at] = Math.floor(rnd() * 256);
        break;
      case 1: // large length field
        out.writeUInt32BE(0xffffffff, Math.min(at, out.length - 4));
        break;
      case 2: // zero length field
        out.writeUInt32LE(0, Math.min(at, out.length - 4));
        break;
      case 3: // truncate
        out = out.subarray(0, Math.max(8, at));
        break;
      case 4: // duplicate a slice
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.floor(at / 2), at), out.subarray(at)]);
        break;
      default: // insert random bytes
        out = Buffer.concat([out.subarray(0, at), randomBytesFrom(rnd, 1 + Math.floor(rnd() * 64)), out.subarray(at)]);
    }
  }
  return out;
}

function randomBytesFrom(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

export interface FuzzCase {
  kind: string;
  /** The full request bytes: request line, headers, body. */
  head: string;
  body: Buffer;
  /** Content-Length claims more than is sent: the server must time the body out. */
  stalls: boolean;
}

const BAD_SHA = 'f'.repeat(64);
const CRLF = '\r\n';

function shaField(boundary: string): Buffer {
  return Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="sha256"${CRLF}${CRLF}${BAD_SHA}${CRLF}`);
}

function filePart(boundary: string, name: string, type: string, content: Buffer, field = 'file'): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="${field}"; filename="${name}"${CRLF}Content-Type: ${type}${CRLF}${CRLF}`),
    content,
    Buffer.from(CRLF),
  ]);
}

function request(method: string, url: string, headers: Record<string, string>, body: Buffer, opts: { contentLength?: string | null } = {}): Pick<FuzzCase, 'head' | 'body'> {
  const lines = [`${method} ${url} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const cl = opts.contentLength === undefined ? String(body.length) : opts.contentLength;
  if (cl !== null) lines.push(`Content-Length: ${cl}`);
  return { head: lines.join(CRLF) + CRLF + CRLF, body };
}

export function generateCase(i: number, samples: Samples, token: string): FuzzCase {
  const rnd = prng(i * 2654435761);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const auth = { Authorization: `Bearer ${token}` };
  const boundary = `----fuzz${Math.floor(rnd() * 1e9)}`;
  const mpHeaders = { ...auth, 'Content-Type': `multipart/form-data; boundary=${boundary}` };
  const media = () => {
    const name = pick(['jpeg', 'png', 'webp', 'mkv', 'asf'] as const);
    return { name, bytes: rnd() < 0.9 ? mutate(samples[name], rnd) : samples[name] };
  };
  const end = Buffer.from(`--${boundary}--${CRLF}`);
  const kinds = [
    'mp-truncated', 'mp-nested', 'mp-field-names', 'mp-many-parts', 'mp-big-part-header', 'mp-bad-content-type',
    'mp-media', 'put-media', 'cl-short', 'cl-long', 'cl-invalid', 'bad-auth', 'mp-garbage', 'mp-mutated', 'bad-digest', 'bad-chunked',
  ] as const;
  // The expensive kinds (10,000 parts, 80 KiB headers) are rarer.
  const kind = rnd() < 0.03 ? pick(['mp-many-parts', 'mp-big-part-header'] as const) : pick(kinds);
  const base = (content: Buffer) => Buffer.concat([shaField(boundary), filePart(boundary, 'x.bin', 'application/octet-stream', content), end]);
  switch (kind) {
    case 'mp-truncated': {
      const full = base(media().bytes);
      const cut = shaField(boundary).length + Math.floor(rnd() * (full.length - shaField(boundary).length - 2));
      return { kind, ...request('POST', '/v1/files', mpHeaders, full.subarray(0, cut)), stalls: false };
    }
    case 'mp-nested': {
      const inner = rnd() < 0.5 ? boundary : `inner${Math.floor(rnd() * 1e6)}`;
      const nested = Buffer.concat([
        Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="file"; filename="n.txt"${CRLF}Content-Type: multipart/mixed; boundary=${inner}${CRLF}${CRLF}`),
        Buffer.from(`--${inner}${CRLF}Content-Type: text/plain${CRLF}${CRLF}hello${CRLF}--${inner}${CRLF}`),
        rnd() < 0.5 ? Buffer.from(`--${inner}--${CRLF}${CRLF}`) : Buffer.alloc(0),
      ]);
      const body = Buffer.concat([shaField(boundary), nested, rnd() < 0.5 ? end : Buffer.alloc(0)]);
      return { kind, ...request('POST', '/v1/files', mpHeaders, body), stalls: false };
    }
    case 'mp-field-names': {
      const name = pick(['', 'x'.repeat(10_000), 'a"b', 'a\r\nb: c', 'a\0b', '../../etc/passwd', '\u202Eexe.png', 'é'.repeat(300)]);
      const part = Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="${name}"${CRLF}${CRLF}v${CRLF}`);
      const withFile = rnd() < 0.5 ? filePart(boundary, name, 'image/png', mutate(samples.png, rnd), name) : Buffer.alloc(0);
      return { kind, ...request('POST', '/v1/files', mpHeaders, Buffer.concat([shaField(boundary), part, withFile, end])), stalls: false };
    }
    case 'mp-many-parts': {
      const one = Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="f"${CRLF}${CRLF}v${CRLF}`);
      const parts = Buffer.concat(Array.from({ length: 10_000 }, () => one));
      return { kind, ...request('POST', '/v1/files', mpHeaders, Buffer.concat([shaField(boundary), parts, end])), stalls: false };
    }
    case 'mp-big-part-header': {
      const big = Buffer.from(`--${boundary}${CRLF}Content-Disposition: form-data; name="file"; filename="a.png"${CRLF}X-Pad: ${'p'.repeat(80 * 1024)}${CRLF}${CRLF}`);
      return { kind, ...request('POST', '/v1/files', mpHeaders, Buffer.concat([shaField(boundary), big, samples.png, Buffer.from(CRLF), end])), stalls: false };
    }
    case 'mp-bad-content-type': {
      const ct = pick(['multipart/form-data', 'multipart/form-data; boundary=', `multipart/form-data; boundary=${'b'.repeat(300)}`, 'multipart/form-data; boundary="unterminated', 'multipart/mixed; boundary=x', 'multipart/form-data; boundary=x; charset=\u0000', 'text/plain']);
      return { kind, ...request('POST', '/v1/files', { ...auth, 'Content-Type': ct }, base(samples.jpeg)), stalls: false };
    }
    case 'mp-media': {
      const m = media();
      const body = Buffer.concat([shaField(boundary), filePart(boundary, `m.${m.name}`, pick(['application/octet-stream', 'image/png', 'video/x-matroska', 'video/x-ms-asf']), m.bytes), end]);
      return { kind, ...request('POST', '/v1/files', mpHeaders, body), stalls: false };
    }
    case 'put-media': {
      const m = media();
      return { kind, ...request('PUT', `/v1/files/m.${m.name}`, { ...auth, 'Content-Digest': `sha-256=:${Buffer.alloc(32, 0xee).toString('base64')}:` }, m.bytes), stalls: false };
    }
    case 'cl-short': {
      const full = base(media().bytes);
      return { kind, ...request('POST', '/v1/files', mpHeaders, full, { contentLength: String(Math.floor(full.length / 2)) }), stalls: false };
    }
    case 'cl-long': {
      // No closing delimiter: the server must wait for bytes that never come, then time out.
      const sent = Buffer.concat([shaField(boundary), filePart(boundary, 'x.bin', 'application/octet-stream', media().bytes)]);
      return { kind, ...request('POST', '/v1/files', mpHeaders, sent, { contentLength: String(sent.length + 1 + Math.floor(rnd() * 10_000)) }), stalls: true };
    }
    case 'cl-invalid': {
      const cl = pick(['abc', '-1', '1,2', '99999999999999999999', '1e3', ' ']);
      return { kind, ...request('PUT', '/v1/files/a.png', auth, samples.png, { contentLength: cl }), stalls: false };
    }
    case 'bad-auth': {
      const h = pick([
        'Bearer', 'Bearer ' + 'a'.repeat(9000), `Bearer ${token.slice(0, -3)}abc`, 'Basic dXNlcjpwYXNz', `Bearer ${token}x`,
        'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', `Bearer ${token.split('.').reverse().join('.')}`, 'Bearer sk_' + 'z'.repeat(43),
      ]);
      return { kind, ...request('PUT', '/v1/files/a.png', { Authorization: h }, samples.png), stalls: false };
    }
    case 'mp-garbage':
      return { kind, ...request('POST', '/v1/files', mpHeaders, randomBytesFrom(rnd, 1 + Math.floor(rnd() * 8192))), stalls: false };
    case 'mp-mutated': {
      const sha = shaField(boundary);
      const rest = Buffer.concat([filePart(boundary, 'a.jpg', 'image/jpeg', samples.jpeg), end]);
      return { kind, ...request('POST', '/v1/files', mpHeaders, Buffer.concat([sha, mutate(rest, rnd)])), stalls: false };
    }
    case 'bad-digest': {
      const d = pick(['sha-256=:abc:', 'sha-256=:' + 'A'.repeat(1000) + ':', 'garbage', 'sha-512=:AAAA:, sha-256=nothing']);
      return { kind, ...request('PUT', '/v1/files/a.png', { ...auth, 'Content-Digest': d }, samples.png), stalls: false };
    }
    case 'bad-chunked': {
      const body = Buffer.from(pick(['zz\r\nabc\r\n0\r\n\r\n', '5\r\nabc\r\n0\r\n\r\n', 'fffffffffffffffff\r\nab\r\n', '3\r\nabc0\r\n\r\n']));
      return { kind, ...request('PUT', '/v1/files/a.txt', { ...auth, 'Transfer-Encoding': 'chunked' }, body, { contentLength: null }), stalls: false };
    }
  }
}

// ------------------------------------------------------------------- client

export interface Outcome {
  status: number;
  code: string | undefined;
  json: boolean;
  /** From the last byte sent to the end of the answer, in ms. */
  latencyMs: number;
  error?: string;
}

/** Sends one case over its own TCP connection and reads the answer. */
export function send(port: number, c: FuzzCase, timeoutMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let lastByteAt = performance.now();
    let done = false;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      const parsed = parseResponse(raw);
      resolve({ ...parsed, latencyMs: performance.now() - lastByteAt, ...(parsed.status === 0 && error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (parseResponse(Buffer.concat(chunks)).complete) finish();
    });
    socket.on('end', () => finish('closed'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? 'error'));
    socket.on('connect', () => {
      const payload = Buffer.concat([Buffer.from(c.head, 'latin1'), c.body]);
      // Write in a few pieces, as real clients and proxies do.
      const pieces = payload.length > 4096 ? [payload.subarray(0, 1000), payload.subarray(1000)] : [payload];
      const writeNext = (k: number) => {
        if (k >= pieces.length || done) {
          lastByteAt = performance.now();
          return;
        }
        // A failed write is reported by 'error'; it is not the last byte sent.
        socket.write(pieces[k]!, (err) => {
          if (!err) writeNext(k + 1);
        });
      };
      writeNext(0);
    });
  });
}

function parseResponse(raw: Buffer): { status: number; code: string | undefined; json: boolean; complete: boolean } {
  const sep = raw.indexOf('\r\n\r\n');
  if (sep < 0) return { status: 0, code: undefined, json: false, complete: false };
  const head = raw.subarray(0, sep).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? -1);
  const body = raw.subarray(sep + 4);
  const complete = len >= 0 && body.length >= len;
  if (!complete) return { status, code: undefined, json: false, complete: false };
  try {
    const j = JSON.parse(body.subarray(0, len).toString('utf8')) as { error?: { code?: unknown } };
    const code = typeof j.error?.code === 'string' ? j.error.code : undefined;
    return { status, code, json: code !== undefined && /content-type:\s*application\/json/i.test(head), complete };
  } catch {
    return { status, code: undefined, json: false, complete };
  }
}

// ------------------------------------------------------------------- server

export interface FuzzServer {
  port: number;
  child: ChildProcess;
  exited: () => boolean;
  rssBytes(): Promise<number>;
  openFds(): Promise<number>;
  /** Waits until at most `max` fds are open (closing sockets settle); returns the count, or the last seen after `deadlineMs`. */
  fdsAtMost(max: number, deadlineMs: number): Promise<number>;
  /** The server's own memory figures from /metrics (bytes): V8 heap used, external (Buffers), RSS. */
  memory(): Promise<{ heapUsed: number; external: number; rss: number }>;
  stderr(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** `node src/server.ts` on the fs backend, auth on, rate limits off (the fuzz would only meet 429s). */
export async function startFuzzServer(opts: { nodeArgs?: string[] } = {}): Promise<FuzzServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-fuzz-'));
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    ...TEST_SERVER_ENV,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    SLUICE_STORAGE: 'fs',
    SLUICE_DATA_DIR: dataDir,
    SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '250',
    SLUICE_ALLOWED_TYPES: 'image/jpeg,image/png,image/webp,text/plain',
    SLUICE_RATE_LIMIT_PER_IP: '0',
    SLUICE_RATE_LIMIT_PER_SUBJECT: '0',
    SLUICE_TENANT_MAX_CONCURRENT_UPLOADS: '0',
    ...hsEnv(),
  };
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), 'src/server.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let exited = false;
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20_000)));
  child.on('exit', () => (exited = true));
  let out = '';
  // Always drained: a full stdout pipe would block the server's synchronous log writes.
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  for (let tries = 0; ; tries++) {
    if (exited) throw new Error(`server exited: ${err}${out}`);
    if (tries > 300) throw new Error(`server did not start: ${err}${out}`);
    const up = await send(port, { kind: 'health', head: 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', body: Buffer.alloc(0), stalls: false }, 1000);
    if (up.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const proc = `/proc/${child.pid}`;
  return {
    port,
    child,
    exited: () => exited,
    async rssBytes() {
      const status = await readFile(`${proc}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    },
    async openFds() {
      return (await readdir(`${proc}/fd`)).length;
    },
    async fdsAtMost(max, deadlineMs) {
      const until = performance.now() + deadlineMs;
      for (;;) {
        const n = (await readdir(`${proc}/fd`)).length;
        if (n <= max || performance.now() > until || exited) return n;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async memory() {
      const token = await hsToken({ scopes: ['admin'], tenant: null });
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      return { heapUsed: metric('nodejs_heap_size_used_bytes'), external: metric('nodejs_external_memory_bytes'), rss: metric('process_resident_memory_bytes') };
    },
    stderr: () => err + out,
    async stop() {
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------- run

export interface FuzzReport {
  requests: number;
  fourXx: number;
  fiveXx: number;
  /** Answers that were not a 4xx JSON error (wrong status, not JSON, no answer). */
  bad: { index: number; kind: string; outcome: Outcome }[];
  /** Answers later than 1 s after the last byte sent. */
  slow: { index: number; kind: string; latencyMs: number }[];
  crashes: number;
  byCode: Record<string, number>;
  maxLatencyMs: number;
  durationMs: number;
}

/** `answerTimeoutMs`: how long one request may wait for its answer before it counts as unanswered (default 5 s). */
export async function runFuzz(server: FuzzServer, opts: { from: number; count: number; concurrency: number; answerTimeoutMs?: number }): Promise<FuzzReport> {
  const samples = await makeSamples();
  const token = await hsToken({ tenant: 'fuzz', expiresIn: 24 * 3600 });
  const report: FuzzReport = { requests: 0, fourXx: 0, fiveXx: 0, bad: [], slow: [], crashes: 0, byCode: {}, maxLatencyMs: 0, durationMs: 0 };
  const started = performance.now();
  let next = opts.from;
  const last = opts.from + opts.count;
  const worker = async () => {
    while (next < last && !server.exited()) {
      const index = next++;
      const c = generateCase(index, samples, token);
      const o = await send(server.port, c, opts.answerTimeoutMs);
      report.requests++;
      if (o.status >= 500) report.fiveXx++;
      if (o.status >= 400 && o.status < 500) report.fourXx++;
      const key = `${o.status} ${o.code ?? o.error ?? '-'}`;
      report.byCode[key] = (report.byCode[key] ?? 0) + 1;
      report.maxLatencyMs = Math.max(report.maxLatencyMs, o.latencyMs);
      if (!(o.status >= 400 && o.status < 500 && o.json)) report.bad.push({ index, kind: c.kind, outcome: o });
      else if (o.latencyMs > 1000) report.slow.push({ index, kind: c.kind, latencyMs: Math.round(o.latencyMs) });
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  report.crashes = server.exited() ? 1 : 0;
  report.durationMs = performance.now() - started;
  return report;
}
