// The one place errors become HTTP answers: { error: { code, message, requestId } }.
// Coded errors keep their status; Fastify's own client errors get a code of
// ours; anything else is a bug, logged in full and answered 500 INTERNAL
// without internals (no stack, path or bucket name).

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { SluiceError, errorCatalogue, isSluiceError, type ErrorCode } from '../../errors.ts';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_CONTENT_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'REQUEST_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_INPUT',
  FST_ERR_VALIDATION: 'INVALID_INPUT',
};

export function toSluiceError(err: unknown): SluiceError {
  if (isSluiceError(err)) return err;
  const fe = err as Partial<FastifyError> | null;
  const mapped = fe?.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new SluiceError(mapped, { message: fe?.validation ? `Invalid request: ${fe.message}` : errorCatalogue[mapped].message, cause: err });
  if (fe?.validation) return new SluiceError('INVALID_INPUT', { message: `Invalid request: ${fe.message}`, cause: err });
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new SluiceError('INVALID_INPUT', { message: fe.message ?? 'Bad request', cause: err });
  }
  return new SluiceError('INTERNAL', { cause: err });
}

/**
 * A refused request whose body is still arriving is read on and dropped for a
 * bounded time and size before its connection is closed ("lingering close").
 * Closing at once, on unread data, makes the kernel answer the client's next
 * segment with RST, and a client still writing then gets EPIPE and loses the
 * answer already on its way (seen about once in 100,000 fuzz requests). Past
 * either bound the connection is half-closed (the answer, then FIN) and, one
 * more LINGER_MS later, closed, so a huge body is never read to the end.
 */
const LINGER_MS = 2000;
const LINGER_BYTES = 1024 * 1024;

function lingerThenClose(request: FastifyRequest, reply: FastifyReply): void {
  const req = request.raw;
  let seen = 0;
  let ending = false;
  let timer: NodeJS.Timeout;
  // Half-close: FIN after the answer, while the rest of the body is still read and
  // dropped, so the client reads the answer before any RST. Then a hard close.
  const halfClose = () => {
    if (ending) return;
    ending = true;
    if (reply.raw.writableFinished) req.socket.end();
    else reply.raw.once('finish', () => req.socket.end());
  };
  const arm = (ms: number, then: () => void) => {
    clearTimeout(timer);
    timer = setTimeout(then, ms);
    timer.unref();
  };
  // A slow client (or a loaded machine) reaching the time bound gets the same
  // half-close as one past the byte bound, and LINGER_MS more before the socket is
  // destroyed: destroying at once on unread data lost the answer (fuzz test, in CI).
  arm(LINGER_MS, () => {
    halfClose();
    arm(LINGER_MS, () => req.socket.destroy());
  });
  // A stage's async iterator may have left a 'readable' listener, which makes
  // resume() a no-op: drop it so the rest of the body really drains.
  req.removeAllListeners('readable');
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    // Past the byte bound, half-close; the timer still ends the connection if the client keeps sending.
    if (seen > LINGER_BYTES) halfClose();
  });
  req.once('end', () => clearTimeout(timer));
  req.socket.once('close', () => clearTimeout(timer));
  req.resume();
}

export function sendError(request: FastifyRequest, reply: FastifyReply, err: SluiceError): FastifyReply {
  // Found by the fuzz test: was `connection: close`, which could lose the answer; see above.
  if (!request.raw.complete && !request.raw.destroyed) lingerThenClose(request, reply);
  const status = err.code === 'CLIENT_ABORTED' ? 400 : err.status;
  return reply
    .code(status)
    .headers(err.headers)
    .type('application/json; charset=utf-8')
    .send({ error: { code: err.code, message: err.message, requestId: request.id, ...(err.details ? { details: err.details } : {}) } });
}

async function errorHandlerPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err, request, reply) => {
    const e = toSluiceError(err);
    if (e.code === 'INTERNAL') request.log.error({ err }, 'unhandled error');
    else if (e.status >= 500) request.log.warn({ err: e, cause: e.cause }, e.message);
    else request.log.info({ code: e.code }, e.message);
    return sendError(request, reply, e);
  });
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new SluiceError('ROUTE_NOT_FOUND')));
}

export const errorHandler = fp(errorHandlerPlugin, { name: 'sluice-error-handler' });
