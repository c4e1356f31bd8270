// HTTP glue for the IETF resumable-upload draft at /v1/uploads[/:id], beside
// tus 1.0 on the same resources: routes/tus-uploads.ts hands a request here
// when isDraftRequest says it is the draft's (docs/resumable.md). This file
// only moves headers, the body and answers between Fastify and
// resumable/uploads.ts; refusals become RFC 9457 problem details.
//
// 104 (Upload Resumption Supported): Node 24's ServerResponse.writeInformation
// writes any 1xx (but 101) before the final answer on HTTP/1.1, and
// Http2ServerResponse has the same method; sent once per creation, with
// Location and Upload-Limit, when the client named an interop version (a
// client of the final RFC learns the URL from the final answer or a HEAD
// anyway). Progress 104s during an append are not sent (they are optional).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { isSluiceError, SluiceError } from '../errors.ts';
import { untilReleased } from '../resumable/body.ts';
import { LATEST_INTEROP, interopVersion, isDraftRequest, uploadLimitHeader, versionHeader, type InteropVersion } from '../resumable/interop.ts';
import { toProblem } from '../resumable/problem.ts';
import { createResumableUploads, type Answer, type BodyCall, type Call, type UploadEngine } from '../resumable/uploads.ts';
import { lingerThenClose } from './plugins/error-handler.ts';
import type { AppDeps } from './types.ts';
import { admitUpload, type Admission } from './upload-admission.ts';

export interface ResumableHttp {
  /** Whether this request is the draft's (else tus 1.0's). */
  claims(request: FastifyRequest): boolean;
  handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** Discovery headers the draft wants on every OPTIONS answer (Accept-Patch, Upload-Limit). */
  discovery(): Record<string, string>;
}

export function createResumableHttp(deps: AppDeps, engine: UploadEngine): ResumableHttp {
  const uploads = createResumableUploads({ config: deps.config, storage: deps.storage, engine, shutdownSignal: deps.shutdownSignal });

  /** Admitted like every upload (upload-admission.ts: size, buffer budget, 100 Continue, deadline, shutdown). */
  const admit = (request: FastifyRequest, reply: FastifyReply) =>
    admitUpload(request, reply, deps, { maxBytes: deps.config.limits.fileBytes, tooLarge: 'FILE_TOO_LARGE' });

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const id = (request.params as { id?: string }).id;
    let version: InteropVersion | undefined;
    let admission: Admission | undefined;
    try {
      version = interopVersion(request.headers);
      const call: Call = { tenant: request.tenant, log: request.log, headers: request.headers, version };
      let answer: Answer;
      if (request.method === 'OPTIONS') answer = uploads.options(version);
      else if (id === undefined) {
        if (request.method !== 'POST') throw new SluiceError('ROUTE_NOT_FOUND');
        admission = await admit(request, reply);
        answer = await uploads.create(withBody(call, request, reply, admission));
      } else if (request.method === 'PATCH') {
        admission = await admit(request, reply);
        answer = await uploads.append(withBody(call, request, reply, admission), id);
      }
      else if (request.method === 'HEAD') answer = await uploads.offset(call, id);
      else if (request.method === 'DELETE') answer = await uploads.cancel(call, id);
      else throw new SluiceError('ROUTE_NOT_FOUND');
      // The deadline or the shutdown cut the body off (its bytes are kept): answer that.
      const cut: unknown = admission?.signal.aborted ? admission.signal.reason : undefined;
      if (isSluiceError(cut) && cut.code !== 'CLIENT_ABORTED') throw cut;
      if (answer.terminate) {
        // Taken over by a newer request: its bytes are kept; end this one abruptly (draft §"Concurrency").
        request.log.info({ upload: { ietf: true, outcome: 'taken-over' } }, 'upload append ended by a newer one');
        request.raw.socket.destroy();
        return reply.hijack();
      }
      reply.code(answer.status).headers({ ...answer.headers, ...versionHeader(version, request.headers) });
      return answer.body === undefined ? reply.send() : reply.type('application/json; charset=utf-8').send(answer.body);
    } catch (err) {
      const problem = toProblem(err, request.id);
      if (!isSluiceError(err)) request.log.error({ err }, 'resumable upload request failed');
      else if (err.status >= 500) request.log.warn({ err }, err.message);
      else request.log.info({ code: err.code }, err.message);
      const v = version ?? LATEST_INTEROP;
      const limit = problem.status === 413 ? uploadLimitHeader(v, { maxSize: deps.config.limits.fileBytes }) : {};
      if (!request.raw.complete && !request.raw.destroyed) lingerThenClose(request, reply);
      return reply
        .code(problem.status)
        .headers({ ...problem.headers, ...limit, ...versionHeader(v, request.headers) })
        .send(JSON.stringify(problem.body));
    } finally {
      admission?.release();
    }
  }

  return {
    claims: (request) => isDraftRequest(request.method, request.headers),
    handle,
    discovery: () => uploads.options(LATEST_INTEROP).headers,
  };
}

function withBody(call: Call, request: FastifyRequest, reply: FastifyReply, admission: Admission): BodyCall {
  const raw = request.raw;
  const named = request.headers['upload-draft-interop-version'] !== undefined;
  return {
    ...call,
    // Read without destroying the request on failure, so a refusal can still be answered.
    body: untilReleased(raw.iterator({ destroyOnReturn: false }), admission.signal),
    bodyComplete: () => raw.complete,
    interim: (headers) => {
      if (!named || reply.raw.headersSent) return;
      try {
        reply.raw.writeInformation(104, { ...headers, ...versionHeader(call.version, request.headers) });
      } catch (err) {
        // The answer already started (or the transport has no 1xx): the final answer carries the same Location.
        request.log.debug({ err }, 'no 104 interim answer');
      }
    },
  };
}
