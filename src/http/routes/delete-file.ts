// DELETE /v1/files/:id — removes the manifest first (the file disappears for
// readers at once), then the original and every variant.

import type { FastifyInstance } from 'fastify';
import { deleteFileObjects, readManifest } from '../../core/files.ts';
import type { RouteOptions } from './index.ts';

export async function deleteFileRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.delete<{ Params: { id: string } }>('/v1/files/:id', { config: { scope: 'files:delete' } }, async (request, reply) => {
    const m = await readManifest(deps.storage, deps.config.keyPrefix, request.tenant, request.params.id);
    await deleteFileObjects(deps.storage, deps.config.keyPrefix, m.tenant, m.id);
    return reply.code(204).send();
  });
}
