// PUT /v1/files/:name — the raw request body is the file (`curl -T`).

import type { FastifyInstance } from 'fastify';
import { commitFiles, stageFile } from '../../core/ingest.ts';
import { sanitizeFileName } from '../../core/names.ts';
import { expectedSha256 } from '../digest-header.ts';
import { fileView } from '../file-view.ts';
import { admitUpload } from '../upload-admission.ts';
import type { RouteOptions } from './index.ts';
import { logUpload } from './upload-multipart.ts';
import { SluiceError } from '../../errors.ts';
import { processQuery } from '../process-query.ts';
import { parsePath } from '../../core/paths.ts';

/** `?path=photos/2024/a.jpg`: validated before the body is read. */
function pathQuery(query: unknown): string | undefined {
  const raw = (query as Record<string, string | string[] | undefined> | undefined)?.path;
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new SluiceError('INVALID_PATH', { message: 'The path parameter is given more than once' });
  return parsePath(raw);
}

export async function uploadRawRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const { config } = deps;
  app.put<{ Params: { name: string } }>(
    '/v1/files/:name',
    {
      config: { deferContinue: true, scope: 'files:write' },
      schema: { params: { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 1024 } }, required: ['name'] } },
    },
    async (request, reply) => {
      const started = performance.now();
      const expected = expectedSha256(request.headers);
      const process = processQuery(request, config);
      const path = pathQuery(request.query);
      if (config.requireContentLength && request.headers['content-length'] === undefined) throw new SluiceError('LENGTH_REQUIRED');
      const admission = await admitUpload(request, reply, deps, { maxBytes: config.limits.fileBytes, tooLarge: 'FILE_TOO_LARGE' });
      const ingestDeps = { config, storage: deps.storage, log: request.log, jobs: deps.jobs };
      try {
        const staged = await stageFile(ingestDeps, {
          tenant: request.tenant,
          name: sanitizeFileName(request.params.name),
          path,
          // Read without destroying on failure, so the error response can still be sent.
          source: request.raw.iterator({ destroyOnReturn: false }),
          declaredType: request.headers['content-type'],
          expectedSha256: expected,
          signal: admission.signal,
          process,
          declaredSize: admission.declaredLength,
        });
        await commitFiles(ingestDeps, [staged]);
        logUpload(request.log, [staged], started, undefined, { metrics: deps.metrics, route: '/v1/files/:name' });
        return reply.code(201).send({ files: [fileView(staged)] });
      } catch (err) {
        logUpload(request.log, [], started, err, { metrics: deps.metrics, route: '/v1/files/:name' });
        throw err;
      } finally {
        admission.release();
      }
    },
  );
}
