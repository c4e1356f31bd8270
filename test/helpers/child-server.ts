// The real server (src/server.ts) as a child process, for behaviour that needs
// a process: signals, exit codes, cluster workers, crashes. Its JSON log lines
// are parsed as they arrive; `waitForLog` waits for one that matches.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { s3Env, type Backend } from './server.ts';
import type { S3TestServer } from './s3.ts';
import { TEST_SERVER_ENV } from './test-env.ts';

const SERVER = fileURLToPath(new URL('../../src/server.ts', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; pid?: number };

export interface ChildServer {
  proc: ChildProcess;
  url: string;
  port: number;
  env: Record<string, string>;
  dataDir?: string;
  bucket?: string;
  s3?: S3TestServer;
  logs: LogLine[];
  waitForLog(match: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kill (if still running) and remove the data directory. */
  cleanup(): Promise<void>;
}

export interface ChildOptions {
  backend?: Backend;
  env?: Record<string, string>;
  args?: string[];
  label?: string;
  /** How long to wait for 'sluice listening' (default 60 s: a loaded CI machine starts node slowly; only a hang takes this long). */
  startTimeoutMs?: number;
  /** Run through `sh -c <wrap> node server.ts ...` (benches raise `ulimit -n` this way). */
  wrap?: string;
  /** Reuse this storage location (a restart): a data dir or an S3 bucket. */
  reuse?: { dataDir?: string | undefined; bucket?: string | undefined; s3?: S3TestServer | undefined };
}

export async function startChild(opts: ChildOptions = {}): Promise<ChildServer> {
  const env: Record<string, string> = { ...TEST_SERVER_ENV, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SLUICE_REAPER_INTERVAL_MS: '0', SLUICE_JOBS_POOL_SIZE: '0' }; // jobs off unless a test asks: their variants would be in every key listing
  let dataDir: string | undefined;
  let bucket: string | undefined;
  let s3: S3TestServer | undefined;
  if ((opts.backend ?? 'fs') === 's3') {
    const e = await s3Env(opts.label ?? 'child');
    Object.assign(env, e.env);
    s3 = e.server;
    bucket = e.bucket;
    if (opts.reuse?.bucket) env.SLUICE_S3_BUCKET = bucket = opts.reuse.bucket;
  } else {
    dataDir = opts.reuse?.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'sluice-child-')));
    Object.assign(env, { SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dataDir });
  }
  Object.assign(env, opts.env);
  const argv = [SERVER, ...(opts.args ?? [])];
  const proc = spawn(opts.wrap ? 'sh' : process.execPath, opts.wrap ? ['-c', opts.wrap, process.execPath, ...argv] : argv, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      l = { msg: line };
    }
    logs.push(l);
    for (const w of [...waiters]) {
      if (w.match(l)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  // The deadline turns a line that never comes into a message; a loaded machine is slow, not wrong, so it is generous.
  const waitForLog = (match: (l: LogLine) => boolean, ms = 60_000) => {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line in ${ms} ms; stderr: ${stderr.slice(-2000)}`)), ms);
      waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void exited.then(({ code }) => {
        // A waiter left unmatched (the loser of a race over several nodes) must not keep its process alive.
        clearTimeout(timer);
        if (waiters.some((w) => w.match === match)) reject(new Error(`server exited (${code}) before the log line; stderr: ${stderr.slice(-2000)}`));
      });
    });
  };
  const listening = await waitForLog((l) => l.msg === 'sluice listening', opts.startTimeoutMs).catch(async (err: unknown) => {
    // Never leave a half-started server behind.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    if (dataDir && !opts.reuse?.dataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const port = Number(listening.port);
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    port,
    env,
    ...(dataDir ? { dataDir } : {}),
    ...(bucket ? { bucket } : {}),
    ...(s3 ? { s3 } : {}),
    logs,
    waitForLog,
    exited,
    async cleanup() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
      if (dataDir && !opts.reuse?.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Everything a child server left in its storage: object keys (fs: every file, temp files included) and pending multipart uploads. */
export async function childLeftovers(c: Pick<ChildServer, 'dataDir' | 'bucket' | 's3'>): Promise<{ keys: string[]; pending: number }> {
  if (c.s3 && c.bucket) {
    const { listKeys, listPendingMultipartUploads } = await import('./s3.ts');
    return { keys: await listKeys(c.s3, c.bucket), pending: (await listPendingMultipartUploads(c.s3, c.bucket)).length };
  }
  const { readdir } = await import('node:fs/promises');
  const entries = c.dataDir ? await readdir(c.dataDir, { recursive: true, withFileTypes: true }) : [];
  return { keys: entries.filter((e) => e.isFile()).map((e) => path.relative(c.dataDir!, path.join(e.parentPath, e.name))), pending: 0 };
}

/** Uploads whose body the server is reading now (sluice_uploads_inflight over every route, from /metrics). */
export async function uploadsInflight(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^sluice_uploads_inflight(?:\{[^}]*\})? (\d+)$/gm)) n += Number(m[1]);
  return n;
}

/** A raw HTTP/1.1 upload over a socket, fed by the test: full control of timing. */
export async function rawUpload(port: number, opts: { path: string; length: number }) {
  const { connect } = await import('node:net');
  const sock = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(`PUT ${opts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${opts.length}\r\n\r\n`);
  let raw = '';
  sock.on('error', () => {});
  // Settles once a whole answer (head and Content-Length body) is in, or the server closed the socket.
  const answered = new Promise<void>((resolve) => {
    const complete = () => {
      const at = raw.indexOf('\r\n\r\n');
      const len = /\r\ncontent-length: (\d+)\r\n/i.exec(raw);
      return at >= 0 && (len ? raw.length - at - 4 >= Number(len[1]) : false);
    };
    sock.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if (complete()) resolve();
    });
    sock.once('close', () => resolve());
  });
  return {
    sock,
    write: (b: Buffer) => new Promise<void>((resolve) => sock.write(b, () => resolve())),
    /** Resolves with the status (0 when the connection closed without an answer) and body once the server closes or answers. */
    async response(): Promise<{ status: number; body: string }> {
      await answered;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
      return { status: m ? Number(m[1]) : 0, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) };
    },
  };
}
