// GET|HEAD /v1/files/:id/content — the original bytes, streamed from storage.

import type { FastifyInstance } from 'fastify';
import { readManifest } from '../../core/files.ts';
import { originalOf, sendObject } from '../send-object.ts';
import type { RouteOptions } from './index.ts';

export async function getContentRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.route<{ Params: { id: string }; Querystring: { download?: string } }>({
    method: ['GET', 'HEAD'],
    url: '/v1/files/:id/content',
    exposeHeadRoute: false,
    config: { scope: 'files:read' },
    handler: async (request, reply) => {
      const m = await readManifest(deps.storage, deps.config.keyPrefix, request.tenant, request.params.id);
      return sendObject(request, reply, deps.storage, originalOf(m));
    },
  });
}
