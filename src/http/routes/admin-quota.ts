// POST /v1/admin/quota/reconcile {tenant} — recount a tenant's stored bytes
// (one listing of its objects) and store that as its quota usage, in the
// storage record and, with Redis, the shared counter. Sets right what a crash
// between a commit and its usage update, or a write around sluice, left
// approximate (docs/security.md, "Storage quota"). Only with a quota on.

import type { FastifyInstance } from 'fastify';
import type { RouteOptions } from './index.ts';

export async function adminQuotaRoute(app: FastifyInstance, { quota }: RouteOptions): Promise<void> {
  if (!quota) return;
  app.post<{ Body: { tenant: string } }>(
    '/v1/admin/quota/reconcile',
    {
      config: { scope: 'admin' },
      schema: {
        body: {
          type: 'object',
          properties: { tenant: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } },
          required: ['tenant'],
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const usedBytes = await quota.reconcile(request.body.tenant);
      request.log.info({ tenant: request.body.tenant, usedBytes }, 'quota usage reconciled');
      return { tenant: request.body.tenant, usedBytes, quotaBytes: quota.limitBytes };
    },
  );
}
