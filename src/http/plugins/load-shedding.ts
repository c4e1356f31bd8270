// Load shedding: past a configured event-loop delay, heap, RSS or number of
// uploads waiting for buffer budget, new requests get 503 BUSY with
// Retry-After before any work is done for them, so an overloaded instance
// recovers instead of timing everyone out. Routes declaring
// `config: { shed: false }` (/health, /metrics) always answer: a process that
// is slow is not a process that is dead, and restarting it would lose uploads.

import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import type { BufferBudget } from '../../core/buffer-budget.ts';
import { SluiceError } from '../../errors.ts';
import type { SluiceMetrics } from '../../metrics.ts';

export interface LoadSheddingOptions {
  shed: Config['ops']['shed'];
  budget: BufferBudget;
  metrics?: SluiceMetrics | undefined;
}

/** How often event-loop delay and memory are sampled: the shedder reacts within this. */
const SAMPLE_INTERVAL_MS = 500;

function overloaded(request: FastifyRequest, reason: string, metrics: SluiceMetrics | undefined): SluiceError | undefined {
  if (request.routeOptions.config.shed === false) return undefined;
  metrics?.shed.inc({ reason });
  return new SluiceError('BUSY', { message: 'The service is overloaded; retry later', details: { reason } });
}

async function loadSheddingPlugin(app: FastifyInstance, opts: LoadSheddingOptions): Promise<void> {
  const { shed, budget, metrics } = opts;
  if (shed.eventLoopDelayMs > 0 || shed.heapBytes > 0 || shed.rssBytes > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: shed.eventLoopDelayMs,
      maxHeapUsedBytes: shed.heapBytes,
      maxRssBytes: shed.rssBytes,
      sampleInterval: SAMPLE_INTERVAL_MS,
      // Rejecting hands the error to our error handler: 503 BUSY, Retry-After, the usual body.
      pressureHandler: async (request, _reply, type, value) => {
        // under-pressure reports Infinity when a sample window recorded no delay at all (the
        // histogram is empty: a busy machine delayed its timer); that is no measurement, not overload.
        if (value === undefined || !Number.isFinite(value)) return;
        const err = overloaded(request, type, metrics);
        if (err) throw err;
      },
    });
  }
  if (shed.uploadWaiters > 0) {
    app.addHook('onRequest', async (request) => {
      if (budget.waiting < shed.uploadWaiters) return;
      const err = overloaded(request, 'uploadWaiters', metrics);
      if (err) throw err;
    });
  }
}

export const loadShedding = fp(loadSheddingPlugin, { name: 'sluice-load-shedding' });
