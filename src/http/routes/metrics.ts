// GET /metrics — Prometheus text exposition (docs/operations.md lists the series).
// Declares the admin scope, but the auth plugin checks scopes on /v1 routes
// only, so today it is open like /health: serve it on an internal network.

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
