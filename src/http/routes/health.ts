// GET /health: the process is alive (never touches storage).
// GET /ready: storage answers, Redis answers (when configured: every role needs
// it, ingest for limits and enqueueing, workers for the queue) and the service
// is not shutting down; 503 otherwise.

import type { FastifyInstance } from 'fastify';
import { SluiceError } from '../../errors.ts';
import type { RouteOptions } from './index.ts';

export async function healthRoutes(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get('/health', { config: { shed: false } }, async () => ({ status: 'ok' }));
  app.get('/ready', async () => {
    // Draining starts the grace period: the load balancer must stop sending before uploads are cut.
    if (deps.drainSignal?.aborted || deps.shutdownSignal?.aborted) throw new SluiceError('SHUTTING_DOWN');
    await deps.storage.ready();
    if (deps.redis && !(await deps.redis.ready())) throw new SluiceError('REDIS_UNAVAILABLE');
    return { status: 'ready', storage: deps.storage.kind, role: deps.config.role, ...(deps.redis ? { redis: 'ready' } : {}) };
  });
}
