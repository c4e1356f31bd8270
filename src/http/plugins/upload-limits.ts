// Per-tenant limits on uploads, checked after authentication and before any
// body byte is read (uploads send 100 Continue only after their admission):
// - a cap on concurrent uploads: every writing request on a files:write route
//   holds a slot until its response is finished or its connection closed. With
//   authentication off there is one tenant (local use) and nobody to be fair
//   to, so no cap: the buffer budget still bounds memory. Slots are counted in
//   this process, or as Redis leases shared by every instance (SLUICE_REDIS_URL);
// - the optional storage quota: a declared Content-Length larger than what is
//   left is refused at once (the stream itself is metered in core/tenant-quota.ts).

import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { AppDeps } from '../types.ts';
import { EmbeddedUploadSlots } from '../../core/limits/embedded-upload-slots.ts';
import type { UploadSlots } from '../../core/limits/upload-slots.ts';
import type { TenantQuota } from '../../core/tenant-quota.ts';
import { isSluiceError, SluiceError } from '../../errors.ts';
import { RedisUploadSlots } from '../../redis/upload-slots.ts';

interface Options {
  deps: AppDeps;
  quota: TenantQuota | undefined;
}

function uploadSlots(deps: AppDeps, log: FastifyInstance['log']): UploadSlots | undefined {
  const { security, redis: redisConfig } = deps.config;
  if (!security.authEnabled) return undefined;
  if (!deps.redis || !redisConfig) return new EmbeddedUploadSlots(security.tenantMaxConcurrentUploads);
  return new RedisUploadSlots({
    redis: deps.redis.commands,
    prefix: deps.redis.key('limits'),
    max: security.tenantMaxConcurrentUploads,
    leaseMs: redisConfig.uploadLeaseMs,
    failMode: redisConfig.limitsOnError,
    log,
    onError: () => deps.metrics?.limiterErrors.inc({ limiter: 'uploads' }),
  });
}

async function uploadLimitsPlugin(app: FastifyInstance, { deps, quota }: Options): Promise<void> {
  const slots = uploadSlots(deps, app.log);
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.scope !== 'files:write' || request.method === 'GET' || request.method === 'HEAD') return;
    if (quota) {
      const declared = Number(request.headers['content-length'] ?? 0);
      if (declared > 0 && declared > (await quota.remaining(request.tenant))) {
        throw new SluiceError('QUOTA_EXCEEDED', { details: { quotaBytes: quota.limitBytes } });
      }
    }
    if (slots) {
      let release: () => void;
      try {
        release = await slots.acquire(request.tenant);
      } catch (err) {
        if (isSluiceError(err) && err.code === 'TOO_MANY_UPLOADS') deps.metrics?.limiterHits.inc({ limiter: 'uploads' });
        throw err;
      }
      // The client may have gone while the (Redis) check ran: 'close' would never fire again.
      if (reply.raw.closed || request.raw.destroyed) release();
      else reply.raw.once('close', release);
    }
  });
}

export const uploadLimits = fp(uploadLimitsPlugin, { name: 'sluice-upload-limits', dependencies: ['sluice-auth'] });
