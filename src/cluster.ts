// Multi-core: with SLUICE_WORKERS / --workers N > 1, the primary process forks
// N workers that share the listening port (node:cluster, round-robin on
// Linux). The primary holds no uploads; it only:
//   - restarts a worker that dies, unless workers die more than
//     SLUICE_WORKER_MAX_RESTARTS times within a minute (a crash loop: restarting
//     forever would hide the fault and burn CPU), in which case it stops all
//     workers and exits 1;
//   - turns SIGTERM/SIGINT into a graceful shutdown of every worker (an IPC
//     message, so a terminal's SIGINT reaching the workers too does not count
//     as a second, forcing signal) and exits when they have;
//   - answers /metrics for any worker with the metrics of all of them.

import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';

const SHUTDOWN = 'sluice:shutdown';
const METRICS_REQ = 'sluice:metrics-req';
const METRICS_RES = 'sluice:metrics-res';
const CRASH_WINDOW_MS = 60_000;

interface MetricsRequest {
  type: typeof METRICS_REQ;
  id: number;
}
interface MetricsResponse {
  type: typeof METRICS_RES;
  id: number;
  contentType?: string;
  body?: string;
  error?: string;
}

export interface PrimaryOptions {
  workers: number;
  maxRestarts: number;
  /** Worker shutdown budget (drain delay + grace + abort); past it plus a margin, workers are killed. */
  shutdownMs: number;
  log: Logger;
}

/**
 * A fair share of `total` for one of `workers` processes, at least 1. Used to
 * divide the CPU-bound thread pools (jobs, libvips) so N processes do not each
 * start a machine-sized pool and oversubscribe the cores.
 */
export function perWorkerShare(total: number, workers: number): number {
  return Math.max(1, Math.floor(total / Math.max(1, workers)));
}

export function cpuShare(workers: number): number {
  return perWorkerShare(availableParallelism(), workers);
}

/** Run the primary; resolves with the process exit code once every worker has gone. */
export function runPrimary(opts: PrimaryOptions): Promise<number> {
  const { log } = opts;
  const aggregator = new AggregatorRegistry();
  const deaths: number[] = [];
  let stopping = false;
  let exitCode = 0;

  return new Promise((resolve) => {
    const fork = () => {
      const w = cluster.fork();
      w.on('message', (msg: unknown) => {
        if ((msg as Partial<MetricsRequest> | null)?.type === METRICS_REQ) void answerMetrics(w, (msg as MetricsRequest).id);
      });
    };
    const answerMetrics = async (w: Worker, id: number) => {
      let res: MetricsResponse;
      try {
        res = { type: METRICS_RES, id, contentType: aggregator.contentType, body: await aggregator.clusterMetrics() };
      } catch (err) {
        res = { type: METRICS_RES, id, error: (err as Error).message };
      }
      if (w.isConnected()) w.send(res);
    };
    const stopAll = (reason: string) => {
      if (stopping) {
        // Second signal: the workers treat it as theirs, ending their grace period.
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
        return;
      }
      stopping = true;
      log.info({ reason, workers: Object.keys(cluster.workers ?? {}).length }, 'cluster: shutting down workers');
      for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send({ type: SHUTDOWN });
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) {
          log.error({ pid: w?.process.pid }, 'cluster: worker did not stop in time; killing it');
          w?.process.kill('SIGKILL');
          exitCode = 1;
        }
      }, opts.shutdownMs + 10_000).unref();
    };

    cluster.on('exit', (w, code, signal) => {
      if (code !== 0) exitCode = stopping ? 1 : exitCode;
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(exitCode);
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - CRASH_WINDOW_MS) deaths.shift();
      if (deaths.length > opts.maxRestarts) {
        log.fatal({ pid: w.process.pid, code, signal, deaths: deaths.length }, 'cluster: workers are crash-looping; giving up');
        exitCode = 1;
        stopAll('crash loop');
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(exitCode);
        return;
      }
      log.error({ pid: w.process.pid, code, signal }, 'cluster: worker died; starting a new one');
      fork();
    });
    cluster.on('online', (w) => log.info({ pid: w.process.pid }, 'cluster: worker online'));
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stopAll(sig));
    for (let i = 0; i < opts.workers; i++) fork();
  });
}

/** In a worker: call `onShutdown` when the primary asks for a graceful stop. */
export function onPrimaryShutdown(onShutdown: () => void): void {
  process.on('message', (msg: unknown) => {
    if ((msg as { type?: string } | null)?.type === SHUTDOWN) onShutdown();
  });
}

/** In a worker: expose `registry` to the primary, and get the cluster-wide metrics from it. */
export function workerMetrics(registry: Registry): () => Promise<{ contentType: string; body: string }> {
  new AggregatorRegistry(); // installs the worker's listener for the primary's collection requests
  AggregatorRegistry.setRegistries([registry]);
  let nextId = 0;
  const pending = new Map<number, { resolve: (r: { contentType: string; body: string }) => void; reject: (e: Error) => void }>();
  process.on('message', (msg: unknown) => {
    const m = msg as Partial<MetricsResponse> | null;
    if (m?.type !== METRICS_RES || m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.error !== undefined || m.body === undefined) p.reject(new Error(m.error ?? 'no metrics'));
    else p.resolve({ contentType: m.contentType ?? 'text/plain', body: m.body });
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      process.send?.({ type: METRICS_REQ, id } satisfies MetricsRequest);
      // prom-client's own collection times out at 5 s; this is a backstop.
      setTimeout(() => {
        if (pending.delete(id)) reject(new Error('cluster metrics timed out'));
      }, 6000).unref();
    });
}
