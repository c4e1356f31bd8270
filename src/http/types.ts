// What plugins and routes are given (AppDeps) and the request decorations they
// share. Kept apart from app.ts so src/http/ never imports the composition root.

import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { BufferBudget } from '../core/buffer-budget.ts';
import type { JobService } from '../jobs/service.ts';
import type { SluiceMetrics } from '../metrics.ts';
import type { RedisLink } from '../redis/link.ts';
import type { Storage } from '../storage/storage.ts';

export interface AppDeps {
  config: Readonly<Config>;
  storage: Storage;
  budget: BufferBudget;
  log: Logger;
  /** Aborts every in-flight upload (graceful shutdown past its grace period). */
  shutdownSignal?: AbortSignal;
  /** Processing jobs: committed files are handed to it; absent, they wait for the next start's rescan. */
  jobs?: JobService;
  /** Aborted when shutdown begins: /ready answers 503 and new uploads are refused. */
  drainSignal?: AbortSignal;
  /** Prometheus series; absent when SLUICE_METRICS=false. */
  metrics?: SluiceMetrics;
  /** In a cluster worker: the metrics of every worker, aggregated by the primary. */
  clusterMetrics?: () => Promise<{ contentType: string; body: string }>;
  /** Shared limits, job queues and revocation messages across instances; absent without SLUICE_REDIS_URL. Closed with the app. */
  redis?: RedisLink;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for; set by authentication, DEFAULT_TENANT when auth is off. */
    tenant: string;
  }
  interface FastifyContextConfig {
    /** The route sends 100 Continue itself, after its admission checks. */
    deferContinue?: boolean;
    /** Scope a token needs for this route (files:read, files:write, files:delete, admin); checked by auth. */
    scope?: string;
    /** false: the load shedder never refuses this route (/health, /metrics). */
    shed?: boolean;
  }
}
