// Prometheus metrics: one registry per app (tests build many apps in one
// process, and prom-client's global registry would collide), with every
// series the service exposes declared here. Other modules record through the
// small methods below; gauges that mirror live state (buffer budget, job
// queues) are read at scrape time through callbacks, so nothing polls.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What a jobs service reports at scrape time (the job service plugs its stats() in here). */
export interface JobStats {
  queueDepth: number;
  running: number;
  poolSize: number;
  sharpConcurrency?: number;
}

/** Live gauges read at scrape time. */
export interface GaugeSources {
  budget?: () => { used: number; capacity: number; waiting: number };
  jobs?: () => JobStats;
  /** Requests (any route) in flight. */
  inflightRequests?: () => number;
  /** BullMQ queue counts; absent without Redis. */
  queues?: () => Promise<readonly { queue: string; state: string; count: number }[]>;
}

const SIZE_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
const DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];
const STORAGE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

export class SluiceMetrics {
  readonly registry = new Registry();
  readonly uploadsStarted: Counter<'route'>;
  readonly uploadsCompleted: Counter<'route'>;
  readonly uploadsFailed: Counter<'route' | 'reason'>;
  readonly uploadsRejected: Counter<'route' | 'reason'>;
  readonly uploadsInflight: Gauge<'route'>;
  readonly uploadBytes: Counter;
  readonly uploadDuration: Histogram<'route' | 'outcome'>;
  readonly fileSize: Histogram;
  readonly storageDuration: Histogram<'backend' | 'op' | 'outcome'>;
  readonly storageErrors: Counter<'backend' | 'op' | 'code'>;
  readonly storageBytes: Counter<'backend' | 'direction'>;
  readonly storageRequests: Counter<'backend' | 'operation'>;
  readonly reaperRemoved: Counter<'kind'>;
  readonly reaperRuns: Counter<'outcome'>;
  readonly jobDuration: Histogram<'kind' | 'outcome'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly shed: Counter<'reason'>;
  // beyond one machine: Redis and the shared limits
  readonly redisErrors: Counter<'connection'>;
  readonly limiterHits: Counter<'limiter'>;
  readonly limiterErrors: Counter<'limiter'>;
  readonly #sources: GaugeSources = {};

  constructor(opts: { uvThreadpoolSize: number; defaultLabels?: Record<string, string> } = { uvThreadpoolSize: 4 }) {
    const r = this.registry;
    if (opts.defaultLabels) r.setDefaultLabels(opts.defaultLabels);
    // process_resident_memory_bytes, nodejs_heap_size_used_bytes, nodejs_eventloop_lag_*, GC, handles...
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 20 });
    const reg = { registers: [r] };
    this.uploadsStarted = new Counter({ name: 'sluice_uploads_started_total', help: 'Uploads admitted (body reading began)', labelNames: ['route'], ...reg });
    this.uploadsCompleted = new Counter({ name: 'sluice_uploads_completed_total', help: 'Uploads committed', labelNames: ['route'], ...reg });
    this.uploadsFailed = new Counter({ name: 'sluice_uploads_failed_total', help: 'Admitted uploads that failed, by error code', labelNames: ['route', 'reason'], ...reg });
    this.uploadsRejected = new Counter({
      name: 'sluice_uploads_rejected_total',
      help: 'Uploads refused before their body was read (size, BUSY, SHUTTING_DOWN...), by error code',
      labelNames: ['route', 'reason'],
      ...reg,
    });
    this.uploadsInflight = new Gauge({ name: 'sluice_uploads_inflight', help: 'Uploads whose body is being read', labelNames: ['route'], ...reg });
    this.uploadBytes = new Counter({ name: 'sluice_upload_bytes_total', help: 'Bytes of committed files', ...reg });
    this.uploadDuration = new Histogram({
      name: 'sluice_upload_duration_seconds',
      help: 'Upload request duration from admission to commit or failure',
      labelNames: ['route', 'outcome'],
      buckets: DURATION_BUCKETS,
      ...reg,
    });
    this.fileSize = new Histogram({ name: 'sluice_file_size_bytes', help: 'Size of committed files', buckets: SIZE_BUCKETS, ...reg });
    this.storageDuration = new Histogram({
      name: 'sluice_storage_operation_duration_seconds',
      help: 'Storage operation latency (put: whole upload stream)',
      labelNames: ['backend', 'op', 'outcome'],
      buckets: STORAGE_BUCKETS,
      ...reg,
    });
    this.storageErrors = new Counter({ name: 'sluice_storage_errors_total', help: 'Storage operations that failed, by error code', labelNames: ['backend', 'op', 'code'], ...reg });
    this.storageBytes = new Counter({ name: 'sluice_storage_bytes_total', help: 'Bytes written to (in) and read from (out) storage', labelNames: ['backend', 'direction'], ...reg });
    this.storageRequests = new Counter({
      name: 'sluice_storage_requests_total',
      help: 'Requests sent to the object store (S3: one per API call and retry), by operation',
      labelNames: ['backend', 'operation'],
      ...reg,
    });
    this.reaperRemoved = new Counter({
      name: 'sluice_reaper_removed_total',
      help: 'Stale items removed by the reaper: multipart (S3 uploads aborted), temp (fs temp files), orphan (objects of files never committed), commit (requests that died mid-commit), s3_upload (abandoned S3-endpoint multipart uploads)',
      labelNames: ['kind'],
      ...reg,
    });
    this.reaperRuns = new Counter({ name: 'sluice_reaper_runs_total', help: 'Reaper sweeps, by outcome', labelNames: ['outcome'], ...reg });
    this.jobDuration = new Histogram({ name: 'sluice_job_duration_seconds', help: 'Processing job duration by kind', labelNames: ['kind', 'outcome'], buckets: DURATION_BUCKETS, ...reg });
    this.httpRequests = new Counter({ name: 'sluice_http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], ...reg });
    this.httpDuration = new Histogram({ name: 'sluice_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'], buckets: DURATION_BUCKETS, ...reg });
    this.shed = new Counter({ name: 'sluice_load_shed_total', help: 'Requests refused with 503 by the load shedder, by reason', labelNames: ['reason'], ...reg });
    this.redisErrors = new Counter({ name: 'sluice_redis_errors_total', help: 'Redis connection errors, by connection (commands, subscriber, bullmq)', labelNames: ['connection'], ...reg });
    this.limiterHits = new Counter({ name: 'sluice_limiter_hits_total', help: 'Requests refused by a limit (ip, subject, uploads)', labelNames: ['limiter'], ...reg });
    this.limiterErrors = new Counter({
      name: 'sluice_limiter_errors_total',
      help: 'Limit checks that could not reach Redis (passed or refused per SLUICE_REDIS_LIMITS_ON_ERROR)',
      labelNames: ['limiter'],
      ...reg,
    });
    const queueSources = this.#sources;
    new Gauge({
      name: 'sluice_queue_jobs',
      help: 'BullMQ jobs per queue and state (waiting, active, delayed, failed, stalled); absent without Redis',
      labelNames: ['queue', 'state'],
      ...reg,
      async collect() {
        const q = await queueSources.queues?.().catch(() => undefined);
        this.reset();
        for (const row of q ?? []) this.set({ queue: row.queue, state: row.state }, row.count);
      },
    });

    const sources = this.#sources;
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        ...reg,
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    gauge('sluice_upload_buffer_used_bytes', 'Upload buffer budget reserved', () => sources.budget?.().used);
    gauge('sluice_upload_buffer_capacity_bytes', 'Upload buffer budget (SLUICE_UPLOAD_BUFFER_BYTES)', () => sources.budget?.().capacity);
    gauge('sluice_upload_buffer_waiting', 'Uploads waiting for buffer budget', () => sources.budget?.().waiting);
    gauge('sluice_http_requests_inflight', 'HTTP requests in flight', () => sources.inflightRequests?.());
    gauge('sluice_job_queue_depth', 'Jobs waiting to run', () => sources.jobs?.().queueDepth);
    gauge('sluice_jobs_running', 'Jobs running', () => sources.jobs?.().running);
    gauge('sluice_job_pool_size', 'Worker threads in the job pool', () => sources.jobs?.().poolSize);
    gauge('sluice_sharp_concurrency', 'libvips threads per sharp operation', () => sources.jobs?.().sharpConcurrency);
    const uv = opts.uvThreadpoolSize;
    gauge('sluice_uv_threadpool_size', 'libuv threadpool size (UV_THREADPOOL_SIZE)', () => uv);
  }

  /** Plug a live source in (buffer budget, jobs service stats...). Later calls replace earlier ones. */
  setSources(s: GaugeSources): void {
    Object.assign(this.#sources, s);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
