// GET /v1/files — the tenant's committed files, oldest first, cursor-paginated;
// `?prefix=photos/2024/` keeps those whose path starts with it.

import type { FastifyInstance } from 'fastify';
import { listFiles } from '../../core/files.ts';
import { parsePath } from '../../core/paths.ts';
import { fileView, fileViewSchema } from '../file-view.ts';
import type { RouteOptions } from './index.ts';

export async function listFilesRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.get<{ Querystring: { limit: number; cursor?: string; prefix?: string } }>(
    '/v1/files',
    {
      config: { scope: 'files:read' },
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, cursor: { type: 'string', maxLength: 64 }, prefix: { type: 'string', minLength: 1, maxLength: 4096 } },
          additionalProperties: false,
        },
        response: {
          200: { type: 'object', properties: { files: { type: 'array', items: fileViewSchema }, nextCursor: { type: 'string' } } },
        },
      },
    },
    async (request) => {
      const { prefix, ...rest } = request.query;
      const pathPrefix = prefix === undefined ? undefined : parsePath(prefix, { prefix: true });
      const page = await listFiles(deps.storage, deps.config.keyPrefix, request.tenant, { ...rest, pathPrefix });
      return { files: page.files.map(fileView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );
}
