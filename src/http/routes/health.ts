// GET /health: the process is alive (never touches storage).
// GET /ready: storage answers and the service is not shutting down; 503 otherwise.

import type { FastifyInstance } from 'fastify';
import { SluiceError } from '../../errors.ts';
import type { RouteOptions } from './index.ts';

export async function healthRoutes(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get('/health', { config: { shed: false } }, async () => ({ status: 'ok' }));
  app.get('/ready', async () => {
    // Draining starts the grace period: the load balancer must stop sending before uploads are cut.
    if (deps.drainSignal?.aborted || deps.shutdownSignal?.aborted) throw new SluiceError('SHUTTING_DOWN');
    await deps.storage.ready();
    return { status: 'ready', storage: deps.storage.kind };
  });
}
