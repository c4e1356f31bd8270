// A throwaway redis-server (Debian's package; .ci/run installs it) for tests
// and benches: loopback only, a free port, no persistence, no config file.
//
//   npx node scripts/redis.ts        starts one, prints REDIS_URL, runs until Ctrl-C
//
// Readiness is its own "Ready to accept connections" log line, not polling.
// restart() starts a fresh, empty server on the same port: what a Redis that
// lost its data looks like to clients (tests of recovery from the markers).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL: clients see the connection drop with nothing said. */
  kill(): Promise<void>;
  /** A new, empty server on the same port (after kill()). */
  restart(): Promise<void>;
  /** SIGTERM, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

export function findRedisBinary(): string | null {
  const fromEnv = process.env.REDIS_SERVER_BIN;
  if (fromEnv) return fromEnv;
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin']) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

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

function launch(bin: string, port: number): Promise<ChildProcess> {
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp', '--protected-mode', 'yes', '--loglevel', 'notice'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const tail: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not get ready in ${READY_TIMEOUT_MS} ms:\n${tail.join('\n')}`));
    }, READY_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      tail.push(line);
      tail.splice(0, Math.max(0, tail.length - 20));
      if (line.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => tail.push(d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${tail.join('\n')}`));
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRedis(opts: { port?: number } = {}): Promise<RedisServer> {
  const bin = findRedisBinary();
  if (bin === null) throw new Error('no redis-server found (apt-get install redis-server, or set REDIS_SERVER_BIN)');
  const port = opts.port ?? (await freePort());
  let child = await launch(bin, port);
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async kill() {
      child.kill('SIGKILL');
      await exitOf(child);
    },
    async restart() {
      await server.kill();
      child = await launch(bin, port);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitOf(child);
      clearTimeout(t);
    },
  };
  return server;
}

if (import.meta.main) {
  const server = await startRedis();
  console.log(`SLUICE_REDIS_URL=${server.url}`);
  console.error('redis-server is up; Ctrl-C stops it.');
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}
