// A throwaway MinIO server for tests and benches: real S3 semantics on
// loopback, fresh data directory per run, fixed test credentials.
//
//   npx node scripts/minio.ts        starts one, prints S3_TEST_* lines, runs until Ctrl-C
//
// The binary comes from scripts/install-minio.sh (go install); see findMinioBinary.
import { spawn, execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface MinioServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The server's process id (benches read its CPU time from /proc). */
  pid: number | undefined;
  /** Resolves with the exit code (or signal name) when the server process ends, for whatever reason. */
  exited: Promise<number | string>;
  /** SIGTERM, SIGKILL after 5 s, then remove the data directory if we created it. Idempotent. */
  stop(): Promise<void>;
}

export interface StartMinioOptions {
  /** Data directory; kept on stop. Default: a fresh temp dir, removed on stop. */
  dataDir?: string;
  /** S3 API port on 127.0.0.1. Default: a free port. */
  port?: number;
}

// MinIO requires a user of >= 3 and a password of >= 8 characters.
const TEST_ACCESS_KEY_ID = 'sluice-test';
const TEST_SECRET_ACCESS_KEY = 'sluice-test-secret';
// MinIO's default region; clients sign with it.
const TEST_REGION = 'us-east-1';

const READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 100;
const STOP_GRACE_MS = 5_000;
// MinIO logs everything, errors included, to stderr; keep enough to explain a failed start.
const STDERR_TAIL_LINES = 30;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `go install` puts binaries: GOBIN, else the first GOPATH entry's bin, else ~/go/bin. */
function goBinDir(): string {
  const goEnv = (name: string): string => {
    try {
      return execFileSync('go', ['env', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return ''; // no go toolchain: fall back to the default layout
    }
  };
  const gobin = goEnv('GOBIN');
  if (gobin !== '') return gobin;
  const gopath = goEnv('GOPATH').split(delimiter)[0] ?? '';
  return join(gopath !== '' ? gopath : join(homedir(), 'go'), 'bin');
}

/**
 * The MinIO binary to run: $MINIO_BIN, then the one `go install` produced, then PATH.
 * Null when there is none. A MINIO_BIN that is not executable is an error, not a fallback.
 */
export function findMinioBinary(): string | null {
  const fromEnv = process.env.MINIO_BIN;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!isExecutable(fromEnv)) throw new Error(`MINIO_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const installed = join(goBinDir(), 'minio');
  if (isExecutable(installed)) return installed;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'minio');
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** A port that was free a moment ago (the OS picks it). Racy in principle, fine on loopback. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not allocate a port'))));
    });
  });
}

async function isLive(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/minio/health/live`, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false; // not listening yet
  }
}

export async function startMinio(opts: StartMinioOptions = {}): Promise<MinioServer> {
  const bin = findMinioBinary();
  if (bin === null) throw new Error('no MinIO binary found (set MINIO_BIN or run scripts/install-minio.sh)');

  const ownsDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'sluice-minio-')));
  const port = opts.port ?? (await freePort());
  const consolePort = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;

  const child = spawn(
    bin,
    ['server', dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`],
    {
      env: {
        ...process.env,
        MINIO_ROOT_USER: TEST_ACCESS_KEY_ID,
        MINIO_ROOT_PASSWORD: TEST_SECRET_ACCESS_KEY,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );

  // A parent that crashes (a bench that throws before its finally) must not leave MinIO running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));

  const stderrLines: string[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    stderrLines.push(...lines.filter((line) => line.trim() !== ''));
    stderrLines.splice(0, Math.max(0, stderrLines.length - STDERR_TAIL_LINES));
  });
  const stderrTail = (): string => [...stderrLines, partial].filter((l) => l.trim() !== '').join('\n') || '(nothing)';

  let exitedWith: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedWith = code ?? signal ?? 'unknown';
      resolve(exitedWith);
    });
    // A spawn failure (ENOENT, EACCES) emits 'error' and may never emit 'exit'.
    child.once('error', (err) => {
      stderrLines.push(`spawn failed: ${err.message}`);
      exitedWith = 'spawn-error';
      resolve(exitedWith);
    });
  });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitedWith === null) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(killTimer);
      }
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exitedWith !== null) {
      await stop();
      throw new Error(`MinIO (${bin}) exited with ${exitedWith} before it was ready; last stderr lines:\n${stderrTail()}`);
    }
    if (await isLive(endpoint)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `MinIO (${bin}) did not answer ${endpoint}/minio/health/live within ${READY_TIMEOUT_MS / 1000} s; last stderr lines:\n${stderrTail()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }

  return {
    endpoint,
    accessKeyId: TEST_ACCESS_KEY_ID,
    secretAccessKey: TEST_SECRET_ACCESS_KEY,
    region: TEST_REGION,
    pid: child.pid,
    exited,
    stop,
  };
}

async function main(): Promise<void> {
  const server = await startMinio();
  console.log(`S3_TEST_ENDPOINT=${server.endpoint}`);
  console.log(`S3_TEST_ACCESS_KEY_ID=${server.accessKeyId}`);
  console.log(`S3_TEST_SECRET_ACCESS_KEY=${server.secretAccessKey}`);
  console.log(`S3_TEST_REGION=${server.region}`);
  console.error('MinIO is up; Ctrl-C stops it and deletes its data.');

  let shuttingDown = false;
  const shutdown = (): void => {
    shuttingDown = true;
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  const how = await server.exited;
  if (shuttingDown) return;
  console.error(`MinIO exited unexpectedly (${how})`);
  await server.stop();
  process.exit(1);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
