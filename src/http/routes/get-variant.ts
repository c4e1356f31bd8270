// GET|HEAD /v1/files/:id/variants/:name — a job's output, streamed
// with the same Range/ETag handling as the original. 404 VARIANT_NOT_FOUND
// until the job is done (GET /v1/files/:id shows its state).

import type { FastifyInstance } from 'fastify';
import { readManifest } from '../../core/files.ts';
import { SluiceError } from '../../errors.ts';
import { sendObject } from '../send-object.ts';
import type { RouteOptions } from './index.ts';

export async function getVariantRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  app.route<{ Params: { id: string; name: string }; Querystring: { download?: string } }>({
    method: ['GET', 'HEAD'],
    url: '/v1/files/:id/variants/:name',
    exposeHeadRoute: false,
    config: { scope: 'files:read' },
    handler: async (request, reply) => {
      const m = await readManifest(deps.storage, deps.config.keyPrefix, request.tenant, request.params.id);
      const job = Object.hasOwn(m.jobs ?? {}, request.params.name) ? m.jobs![request.params.name] : undefined;
      const v = job?.state === 'done' ? job.output : undefined;
      if (!v) throw new SluiceError('VARIANT_NOT_FOUND', { details: { state: job?.state ?? 'none' } });
      const base = m.name.replace(/\.[^.]*$/, '') || 'file';
      return sendObject(request, reply, deps.storage, {
        key: v.key,
        size: v.size,
        sha256: v.sha256,
        mime: v.type.mime,
        filename: v.compression ? `${m.name}.${v.type.ext}` : `${base}-${request.params.name}.${v.type.ext}`,
        lastModified: job!.updatedAt,
      });
    },
  });
}
