// Registers every route. Upload routes live in their own context with a
// content-type parser that hands the raw request stream on unread, so no
// upload body is ever buffered by Fastify.

import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../types.ts';
import { deleteFileRoute } from './delete-file.ts';
import { getContentRoute } from './get-content.ts';
import { getFileRoute } from './get-file.ts';
import { healthRoutes } from './health.ts';
import { listFilesRoute } from './list-files.ts';
import type { TenantQuota } from '../../core/tenant-quota.ts';
import { getLimitsRoute } from './get-limits.ts';
import { metricsRoute } from './metrics.ts';
import { uploadMultipartRoute } from './upload-multipart.ts';
import { uploadRawRoute } from './upload-raw.ts';
import { getVariantRoute } from './get-variant.ts';
import { jobsStatsRoute } from './jobs-stats.ts';
import { adminRevokeRoute } from './admin-revoke.ts';
import { adminQuotaRoute } from './admin-quota.ts';
import { createLinkRoute } from './create-link.ts';
import { getLinkRoute } from './get-link.ts';
import { webPageRoute } from './web-page.ts';

export interface RouteOptions {
  deps: AppDeps;
  /** The tenant quota, when on (its admin reconcile route). */
  quota?: TenantQuota | undefined;
}

export async function routes(app: FastifyInstance, opts: RouteOptions): Promise<void> {
  await app.register(healthRoutes, opts);
  // A worker node runs the job pool and answers only probes and metrics: uploads and downloads
  // go to ingest nodes, so the two tiers scale apart.
  if (opts.deps.config.role === 'worker') {
    await app.register(metricsRoute, opts);
    return;
  }
  await app.register(async function uploads(scope) {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', function passThrough(_request, _payload, done) {
      done(null, undefined);
    });
    await scope.register(uploadMultipartRoute, opts);
    await scope.register(uploadRawRoute, opts);
    // Resumable uploads (tus). Imported here, at start-up, so a worker node never loads @tus/*.
    await scope.register((await import('./tus-uploads.ts')).tusUploadsRoute, opts);
  });
  // The S3-compatible endpoint (docs/s3-api.md), loaded only when it is on.
  if (opts.deps.config.s3Api) await app.register((await import('../../s3api/routes.ts')).s3Routes, opts);
  await app.register(listFilesRoute, opts);
  await app.register(getLimitsRoute, opts);
  await app.register(getFileRoute, opts);
  await app.register(getContentRoute, opts);
  await app.register(deleteFileRoute, opts);
  await app.register(getVariantRoute, opts);
  await app.register(jobsStatsRoute, opts);
  await app.register(adminRevokeRoute, opts);
  await app.register(adminQuotaRoute, opts);
  await app.register(createLinkRoute, opts);
  await app.register(getLinkRoute, opts);
  await app.register(webPageRoute); // the upload page at /
  await app.register(metricsRoute, opts);
}
