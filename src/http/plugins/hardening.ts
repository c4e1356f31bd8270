// Security headers (helmet) on every answer, and CORS for the configured
// origins only. The service speaks JSON and bytes, never HTML, so the CSP
// forbids everything; downloads add their own sandbox CSP (send-object.ts).

import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config.ts';

/** Request headers browsers may send (uploads, auth, digests, tus). */
const ALLOWED_HEADERS = [
  'authorization', 'content-type', 'content-digest', 'x-amz-checksum-sha256', 'x-api-key', 'x-request-id', 'if-none-match', 'if-range', 'range',
  'tus-resumable', 'upload-length', 'upload-offset', 'upload-metadata', 'upload-defer-length', 'upload-concat', 'x-http-method-override',
];
/** Response headers browser code may read. */
const EXPOSED_HEADERS = [
  'etag', 'content-range', 'content-disposition', 'repr-digest', 'x-request-id', 'retry-after', 'location',
  'tus-resumable', 'upload-offset', 'upload-length', 'upload-expires', 'tus-version', 'tus-max-size', 'tus-extension',
];

async function hardeningPlugin(app: FastifyInstance, { config }: { config: Readonly<Config> }): Promise<void> {
  const origins = config.security.corsOrigins;
  // Node's requestTimeout is off (it would cut long uploads) and the socket timeout is idle-based, so a small
  // JSON body sent a byte every few seconds would hold a connection for as long as the client likes. Non-upload
  // bodies (≤ 1 MiB) must arrive within the headers timeout; uploads (files:write) have their own idle timeout.
  app.addHook('onRequest', async (request) => {
    if (request.raw.complete || request.routeOptions.config.scope === 'files:write') return;
    const timer = setTimeout(() => {
      if (!request.raw.complete) {
        request.log.info({ code: 'REQUEST_TIMEOUT' }, 'request body too slow: connection closed');
        request.raw.socket.destroy();
      }
    }, config.timeouts.headersMs);
    timer.unref();
    request.raw.once('end', () => clearTimeout(timer));
    request.raw.once('close', () => clearTimeout(timer));
  });
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    // Files may be embedded by the configured origins (an <img> of a signed link); else same origin only.
    crossOriginResourcePolicy: { policy: origins.length > 0 ? 'cross-origin' : 'same-origin' },
    hsts: { maxAge: 31_536_000, includeSubDomains: true },
  });
  if (origins.length > 0) {
    await app.register(cors, {
      origin: [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
      strictPreflight: true,
    });
  }
}

export const hardening = fp(hardeningPlugin, { name: 'sluice-hardening' });
