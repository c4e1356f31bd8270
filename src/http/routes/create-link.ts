// POST /v1/files/:id/links {expiresIn?} — a signed URL that downloads the file
// without a token until it expires (served by get-link.ts).

import type { FastifyInstance } from 'fastify';
import { linkPath } from '../../core/auth/signed-links.ts';
import { readManifest } from '../../core/files.ts';
import type { RouteOptions } from './index.ts';

export async function createLinkRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const links = deps.config.security.links;
  app.post<{ Params: { id: string }; Body: { expiresIn?: number } | undefined }>(
    '/v1/files/:id/links',
    {
      config: { scope: 'files:read' },
      schema: {
        body: {
          type: ['object', 'null'],
          properties: { expiresIn: { type: 'integer', minimum: 1, maximum: links.maxTtlS } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      // Only a file the caller can read gets a link (404 across tenants, as everywhere).
      const m = await readManifest(deps.storage, deps.config.keyPrefix, request.tenant, request.params.id);
      const expires = Math.floor(Date.now() / 1000) + (request.body?.expiresIn ?? links.defaultTtlS);
      const path = linkPath(links.secret, { tenant: m.tenant, id: m.id, expires });
      const base = links.publicUrl ?? `${request.protocol}://${request.host}`;
      return reply.code(201).send({ url: `${base}${path}`, expiresAt: new Date(expires * 1000).toISOString() });
    },
  );
}
