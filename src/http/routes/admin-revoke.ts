// POST /v1/admin/revoke {subject?, tenant?} — refuse every token (and API key)
// issued up to now for that subject and/or tenant. Takes effect at once on
// this instance and within SLUICE_AUTH_REVOCATION_CACHE_MS on every other.
// `sluice admin revoke` calls this.

import type { FastifyInstance } from 'fastify';
import { SluiceError } from '../../errors.ts';
import type { RouteOptions } from './index.ts';

export async function adminRevokeRoute(app: FastifyInstance, _opts: RouteOptions): Promise<void> {
  app.post<{ Body: { subject?: string; tenant?: string } }>(
    '/v1/admin/revoke',
    {
      config: { scope: 'admin' },
      schema: {
        body: {
          type: 'object',
          properties: {
            subject: { type: 'string', minLength: 1, maxLength: 256 },
            tenant: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          },
          additionalProperties: false,
          minProperties: 1,
        },
      },
    },
    async (request) => {
      // Unknown properties are stripped by validation, so `{ "tenants": "x" }` arrives as {}: refuse it, never revoke nothing.
      if (request.body.subject === undefined && request.body.tenant === undefined) {
        throw new SluiceError('INVALID_INPUT', { message: 'Give "subject", "tenant" or both' });
      }
      const revoked = await app.revocations.revoke(request.body);
      request.log.warn({ revoked }, 'tokens revoked');
      return { revocations: revoked.map((r) => ({ kind: r.kind, value: r.value, notBefore: new Date(r.notBefore * 1000).toISOString() })) };
    },
  );
}
