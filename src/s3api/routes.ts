// The S3 endpoint's routes: path-style `/s3/<bucket>[/<key>]`, one handler
// per method that picks the operation from the query (?uploads, ?uploadId,
// ?partNumber), as S3 does. Bodies are never parsed by Fastify (uploads stream
// into the ingest pipeline; the one XML body, CompleteMultipartUpload, is read
// by its handler with a bound). Errors are S3 XML error documents.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isSluiceError } from '../errors.ts';
import { lingerThenClose, toSluiceError } from '../http/plugins/error-handler.ts';
import type { RouteOptions } from '../http/routes/index.ts';
import { S3Error, toS3Error } from './errors.ts';
import { MultipartOperations } from './multipart.ts';
import { ObjectOperations, target, type S3Target } from './objects.ts';
import { S3_PREFIX } from './s3-auth.ts';
import { errorXml } from './xml.ts';

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

export async function s3Routes(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const objects = new ObjectOperations(deps);
  const multipart = new MultipartOperations(deps, objects);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', function passThrough(_request, _payload, done) {
    done(null, undefined);
  });
  app.setErrorHandler((err, request, reply) => {
    const e = toS3Error(err instanceof S3Error || isSluiceError(err) ? err : toSluiceError(err));
    if (e.status >= 500) request.log.warn({ err, s3Code: e.s3Code }, e.message);
    else request.log.info({ s3Code: e.s3Code, code: e.sluiceCode }, e.message);
    if (!request.raw.complete && !request.raw.destroyed) lingerThenClose(request, reply);
    reply.code(e.status).headers(e.headers).header('content-type', 'application/xml');
    if (request.method === 'HEAD') return reply.send();
    return reply.send(errorXml(e, request.url.split('?')[0]!, request.id));
  });

  const withKey = (t: S3Target): S3Target & { key: string } => {
    if (t.key === undefined) throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
    return t as S3Target & { key: string };
  };
  const has = (t: S3Target, name: string) => t.query[name] !== undefined;

  const bucketHandlers: Record<string, Handler> = {
    HEAD: (req, reply) => objects.headBucket(req, reply),
    GET: (req, reply) => objects.listObjects(req, reply, target(req)),
    PUT: (req, reply) => objects.createBucket(req, reply, target(req)),
  };
  const objectHandlers: Record<string, Handler> = {
    PUT: (req, reply) => {
      const t = withKey(target(req));
      return has(t, 'uploadId') || has(t, 'partNumber') ? multipart.uploadPart(req, reply, t) : objects.putObject(req, reply, t);
    },
    GET: (req, reply) => {
      const t = withKey(target(req));
      return has(t, 'uploadId') ? multipart.listParts(req, reply, t) : objects.getObject(req, reply, t);
    },
    HEAD: (req, reply) => objects.getObject(req, reply, withKey(target(req))),
    DELETE: (req, reply) => {
      const t = withKey(target(req));
      return has(t, 'uploadId') ? multipart.abort(req, reply, t) : objects.deleteObject(req, reply, t);
    },
    POST: (req, reply) => {
      const t = withKey(target(req));
      if (has(t, 'uploads')) return multipart.create(req, reply, t);
      if (has(t, 'uploadId')) return multipart.complete(req, reply, t);
      throw new S3Error('NotImplemented', 'This POST operation is not supported by this endpoint');
    },
  };

  // SDKs address a bucket as `/s3/<bucket>/` (the object route with an empty key) or `/s3/<bucket>`.
  const objectOrBucket = (method: string): Handler => {
    const onObject = objectHandlers[method];
    const onBucket = bucketHandlers[method];
    return (req, reply) => {
      const onThis = target(req).key === undefined ? onBucket : onObject;
      if (!onThis) throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
      return onThis(req, reply);
    };
  };
  const methods = ['GET', 'HEAD', 'PUT', 'DELETE', 'POST'];
  for (const [url, handlerOf] of [
    [`${S3_PREFIX}/:bucket`, (m: string) => bucketHandlers[m]],
    [`${S3_PREFIX}/:bucket/*`, objectOrBucket],
  ] as const) {
    for (const method of methods) {
      const handler = handlerOf(method);
      if (!handler) continue;
      app.route({
        method,
        url,
        exposeHeadRoute: false,
        // scope files:write on uploads: the per-tenant upload cap and the body-timeout exemption of
        // hardening.ts apply as for /v1 uploads; s3-auth checks each operation's own scope.
        config: { s3: true, ...(method === 'PUT' ? { deferContinue: true } : {}), ...(method === 'PUT' || method === 'POST' ? { scope: 'files:write' } : {}) },
        handler,
      });
    }
  }
}
