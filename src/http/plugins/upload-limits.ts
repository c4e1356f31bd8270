// Caps concurrent uploads per tenant: every writing request on a files:write
// route holds a slot from authentication until its response is finished or
// its connection closed. With authentication off there is one tenant (local
// use) and nobody to be fair to, so no cap: the buffer budget still bounds memory.

import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import { TenantSlots } from '../../core/tenant-slots.ts';

async function uploadLimitsPlugin(app: FastifyInstance, { config }: { config: Readonly<Config> }): Promise<void> {
  if (!config.security.authEnabled) return;
  const slots = new TenantSlots(config.security.tenantMaxConcurrentUploads);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.scope !== 'files:write' || request.method === 'GET' || request.method === 'HEAD') return;
    const release = slots.acquire(request.tenant);
    reply.raw.once('close', release);
  });
}

export const uploadLimits = fp(uploadLimitsPlugin, { name: 'sluice-upload-limits', dependencies: ['sluice-auth'] });
