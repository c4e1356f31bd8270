// Per-tenant limits on uploads, checked after authentication and before any
// body byte is read (uploads send 100 Continue only after their admission):
// - a cap on concurrent uploads: every writing request on a files:write route
//   holds a slot until its response is finished or its connection closed. With
//   authentication off there is one tenant (local use) and nobody to be fair
//   to, so no cap: the buffer budget still bounds memory;
// - the optional storage quota: a declared Content-Length larger than what is
//   left is refused at once (the stream itself is metered in core/tenant-quota.ts).

import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';
import type { TenantQuota } from '../../core/tenant-quota.ts';
import { TenantSlots } from '../../core/tenant-slots.ts';
import { SluiceError } from '../../errors.ts';

interface Options {
  config: Readonly<Config>;
  quota: TenantQuota | undefined;
}

async function uploadLimitsPlugin(app: FastifyInstance, { config, quota }: Options): Promise<void> {
  const slots = config.security.authEnabled ? new TenantSlots(config.security.tenantMaxConcurrentUploads) : undefined;
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.scope !== 'files:write' || request.method === 'GET' || request.method === 'HEAD') return;
    if (quota) {
      const declared = Number(request.headers['content-length'] ?? 0);
      if (declared > 0 && declared > (await quota.remaining(request.tenant))) {
        throw new SluiceError('QUOTA_EXCEEDED', { details: { quotaBytes: quota.limitBytes } });
      }
    }
    if (slots) {
      const release = slots.acquire(request.tenant);
      reply.raw.once('close', release);
    }
  });
}

export const uploadLimits = fp(uploadLimitsPlugin, { name: 'sluice-upload-limits', dependencies: ['sluice-auth'] });
