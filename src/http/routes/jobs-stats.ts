// GET /v1/jobs/stats — the job pool's state and the thread settings in use:
// queue depth, running tasks, pool size, UV_THREADPOOL_SIZE, sharp
// concurrency. Admin scope: it describes the whole instance.

import type { FastifyInstance } from 'fastify';
import type { RouteOptions } from './index.ts';

export async function jobsStatsRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get('/v1/jobs/stats', { config: { scope: 'admin' } }, async () => ({ jobs: deps.jobs?.stats() ?? null }));
}
