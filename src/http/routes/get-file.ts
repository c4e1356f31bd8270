// GET /v1/files/:id — the file's manifest, with links.

import type { FastifyInstance } from 'fastify';
import { readManifest } from '../../core/files.ts';
import { fileLinks } from '../file-view.ts';
import type { RouteOptions } from './index.ts';

export async function getFileRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get<{ Params: { id: string } }>('/v1/files/:id', { config: { scope: 'files:read' } }, async (request) => {
    const m = await readManifest(deps.storage, deps.config.keyPrefix, request.tenant, request.params.id);
    return { ...m, links: fileLinks(m.id) };
  });
}
