// GET /metrics — Prometheus text exposition (docs/operations.md lists the series).
// Behind the admin scope: series names and labels describe the deployment.

import type { FastifyInstance } from 'fastify';
import type { RouteOptions } from './index.ts';

export async function metricsRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const metrics = deps.metrics;
  if (!metrics) return;
  app.get('/metrics', { logLevel: 'warn', config: { scope: 'admin', shed: false }, schema: { hide: true } }, async (_request, reply) => {
    const { contentType, body } = await (deps.clusterMetrics ?? (() => metrics.render()))();
    return reply.type(contentType).send(body);
  });
}
