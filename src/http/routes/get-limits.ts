// GET /v1/limits — what one upload request may carry, and how many uploads
// at once this instance serves without queueing, so that clients (the CLI)
// size their batches and concurrency from the answer instead of guessing.

import type { FastifyInstance } from 'fastify';
import type { RouteOptions } from './index.ts';

/** Never suggest more than this many concurrent uploads: beyond it, connections cost more than they win. */
const MAX_SUGGESTED = 32;

export async function getLimitsRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get('/v1/limits', { config: { scope: 'files:write' } }, async () => {
    const { limits } = deps.config;
    // Uploads that fit the buffer budget at their worst case; more would wait for budget (uploadQueueMs).
    const fit = Math.floor(deps.budget.capacity / Math.max(1, deps.storage.bufferedBytesPerPut));
    return {
      fileBytes: limits.fileBytes,
      requestBytes: limits.requestBytes,
      filesPerRequest: limits.files,
      uploadConcurrency: Math.min(MAX_SUGGESTED, Math.max(1, fit)),
    };
  });
}
