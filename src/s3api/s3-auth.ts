// Authentication of /s3 requests: SigV4 (sigv4.ts) instead of bearer tokens,
// then the same revocation check and scopes as /v1. Registered beside the /v1
// auth plugin, before the per-tenant upload limits, so an S3 upload holds one
// of its tenant's upload slots like any other upload. Sets request.tenant,
// request.principal and request.s3 (what the body checks need).
//
// Scopes by operation: GET/HEAD files:read; PUT/POST (uploads) files:write;
// DELETE files:delete, except AbortMultipartUpload (files:write).

import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { S3ApiConfig } from '../config.ts';
import { S3AccessKeys } from '../core/auth/s3-access-keys.ts';
import type { Scope } from '../core/auth/scopes.ts';
import { S3Error } from './errors.ts';
import { SigV4Verifier, splitUrl, type VerifiedRequest } from './sigv4.ts';
import '../http/types.ts';
import '../http/plugins/auth.ts';

/** Where the endpoint is mounted: path-style, `/s3/<bucket>/<key>`, one bucket per tenant. */
export const S3_PREFIX = '/s3';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified SigV4 request of an /s3 route. */
    s3: VerifiedRequest | undefined;
  }
  interface FastifyContextConfig {
    /** An S3-protocol route: authenticated by s3-auth, errors as XML. */
    s3?: boolean;
  }
}

export function requiredScope(request: FastifyRequest): Scope {
  switch (request.method) {
    case 'GET':
    case 'HEAD':
      return 'files:read';
    case 'DELETE':
      return 'uploadId' in splitUrl(request.url).query ? 'files:write' : 'files:delete';
    default:
      return 'files:write';
  }
}

async function s3AuthPlugin(app: FastifyInstance, { config }: { config: S3ApiConfig }): Promise<void> {
  const verifier = new SigV4Verifier(new S3AccessKeys(config.accessKeys, config.secret), { maxPresignS: config.maxPresignS });
  app.decorateRequest('s3', undefined);
  app.addHook('onRequest', async (request) => {
    if (!request.routeOptions.config.s3) return;
    // The same limits as /v1, in the same order: per IP before the signature is checked, per caller after.
    await app.rateLimits.byIp(request);
    const verified = await verifier.verify({ method: request.method, rawUrl: request.url, headers: request.headers });
    const { principal } = verified;
    // Equal counts as revoked, as for API keys (authenticator.ts).
    if (principal.issuedAt < (await app.revocations.notBefore(principal))) throw new S3Error('AccessDenied', 'The access key has been revoked');
    request.s3 = verified;
    request.principal = principal;
    request.tenant = principal.tenant;
    request.log = request.log.child({ tenant: principal.tenant, sub: principal.subject });
    await app.rateLimits.bySubject(request);
    const scope = requiredScope(request);
    if (!principal.scopes.has(scope)) throw new S3Error('AccessDenied', `Access Denied: the access key lacks the ${scope} scope`);
  });
}

export const s3Auth = fp(s3AuthPlugin, { name: 'sluice-s3-auth', dependencies: ['sluice-auth'] });
