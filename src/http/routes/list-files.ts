// GET /v1/files — the tenant's committed files, oldest first, cursor-paginated.

import type { FastifyInstance } from 'fastify';
import { listFiles } from '../../core/files.ts';
import { fileView, fileViewSchema } from '../file-view.ts';
import type { RouteOptions } from './index.ts';

export async function listFilesRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/v1/files',
    {
      config: { scope: 'files:read' },
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, cursor: { type: 'string', maxLength: 64 } },
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', properties: { files: { type: 'array', items: fileViewSchema }, nextCursor: { type: 'string' } } },
        },
      },
    },
    async (request) => {
      const page = await listFiles(deps.storage, deps.config.keyPrefix, request.tenant, request.query);
      return { files: page.files.map(fileView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );
}
