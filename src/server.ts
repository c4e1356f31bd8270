// The entry point: load config, build the app, listen, wire signals. Nothing else.
// threadpool.ts must stay the first import: it sizes libuv's threadpool
// before anything below can start it.
import './threadpool.ts';

import cluster from 'node:cluster';
import { buildApp, defaultDeps } from './app.ts';
import { onPrimaryShutdown, runPrimary, workerMetrics } from './cluster.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { Reaper } from './core/reaper.ts';
import { envFromFlags } from './flags.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger } from './logger.ts';
import { createStorage } from './storage/index.ts';
import { JobService } from './jobs/service.ts';

let config: Readonly<Config>;
try {
  config = loadConfig({ ...process.env, ...envFromFlags(process.argv.slice(2)) });
} catch (err) {
  if (err instanceof ConfigError || (err instanceof Error && /flag/.test(err.message))) {
    process.stderr.write(`sluice: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const log = createLogger(config);
const { shutdown: timings } = config.ops;

if (config.ops.workers > 1 && cluster.isPrimary) {
  log.info({ workers: config.ops.workers, pid: process.pid }, 'sluice cluster starting');
  const code = await runPrimary({
    workers: config.ops.workers,
    maxRestarts: config.ops.workerMaxRestarts,
    shutdownMs: timings.drainDelayMs + timings.graceMs + timings.abortMs,
    log,
  });
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  process.exit(code);
}

// Signals are wired before start-up, so a SIGTERM that lands while the app is
// still starting is honoured as soon as it listens (cluster primaries send it early).
const running: { app?: Awaited<ReturnType<typeof buildApp>>; pending?: { reason: string; force: boolean } } = {};
const lifecycle = new Lifecycle(timings);
const stop = (reason: string, force = true) => {
  if (!running.app) {
    running.pending ??= { reason, force };
    return;
  }
  void lifecycle.shutdown(running.app, log, reason, { force }).then((code) => process.exit(code));
};
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop(sig));
if (cluster.isWorker) onPrimaryShutdown(() => stop('primary', false));

const storage = await createStorage(config);
const base = await defaultDeps(config, storage, log);
// Processing jobs: started before listening, so recovered work begins at once.
// An ingest node runs no pool: its commits leave markers (and, with Redis,
// BullMQ jobs it enqueues) for the worker nodes.
const jobs =
  config.role === 'ingest' && !config.redis
    ? undefined
    : await JobService.create({ config, storage, log: log.child({ component: 'jobs' }), onRedisError: () => base.metrics?.redisErrors.inc({ connection: 'bullmq' }) });
await jobs?.start();
if (jobs) base.metrics?.setSources({ jobs: () => jobs.stats(), queues: () => jobs.queueCounts() });
const deps = {
  ...base,
  ...(jobs ? { jobs } : {}),
  drainSignal: lifecycle.drainSignal,
  shutdownSignal: lifecycle.shutdownSignal,
  ...(cluster.isWorker && base.metrics ? { clusterMetrics: workerMetrics(base.metrics.registry) } : {}),
};
const built = await buildApp(deps);
lifecycle.track(built.server);
base.metrics?.setSources({ inflightRequests: () => lifecycle.inflight });

const reaper = new Reaper({
  storage: deps.storage,
  keyPrefix: config.keyPrefix,
  maxAgeMs: config.ops.reaper.maxAgeMs,
  intervalMs: config.ops.reaper.intervalMs,
  log: log.child({ component: 'reaper' }),
  onSweep: (r, kind) => {
    base.metrics?.reaperRemoved.inc({ kind: kind === 's3' ? 'multipart' : 'temp' }, r.staleUploads);
    base.metrics?.reaperRemoved.inc({ kind: 'orphan' }, r.orphanObjects);
    base.metrics?.reaperRemoved.inc({ kind: 'commit' }, r.abandonedCommits);
    base.metrics?.reaperRemoved.inc({ kind: 's3_upload' }, r.abandonedS3Uploads);
    base.metrics?.reaperRuns.inc({ outcome: 'ok' });
  },
  onError: () => base.metrics?.reaperRuns.inc({ outcome: 'error' }),
});
// Closers run in reverse: reaper first, storage last. The jobs service goes between them.
lifecycle.addCloser({ name: 'storage', close: () => storage.close() });
// Running jobs get the shutdown grace; what is left stays pending for the next start.
if (jobs) lifecycle.addCloser({ name: 'jobs', close: () => jobs.close(timings.graceMs) });
lifecycle.addCloser({ name: 'reaper', close: () => reaper.close() });

await built.listen({ port: config.port, host: config.host, backlog: config.ops.listenBacklog });
running.app = built;
const addr = built.server.address();
const port = addr && typeof addr === 'object' ? addr.port : config.port;
built.log.info({ storage: storage.kind, role: config.role, redis: config.redis !== undefined, host: config.host, port, pid: process.pid }, 'sluice listening');
// The first sweep runs right after start, so a restart cleans up after a crash.
if (config.ops.reaper.intervalMs > 0) void reaper.start();
if (running.pending) stop(running.pending.reason, running.pending.force);
