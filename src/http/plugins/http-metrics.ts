// Counts and times every HTTP answer by method, route pattern (never the raw
// URL: ids would explode the label set) and status.

import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { SluiceMetrics } from '../../metrics.ts';

async function httpMetricsPlugin(app: FastifyInstance, opts: { metrics: SluiceMetrics }): Promise<void> {
  const { metrics } = opts;
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}

export const httpMetrics = fp(httpMetricsPlugin, { name: 'sluice-http-metrics' });
