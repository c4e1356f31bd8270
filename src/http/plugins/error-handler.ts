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
 * A refused request whose body is still arriving is read on and dropped before
 * its connection is closed ("lingering close", RFC 9112 section 9.6). Closing
 * on unread data makes the kernel answer the client's next segment with RST; a
 * client still writing then gets EPIPE and loses the answer already in its
 * receive buffer (seen in loaded CI fuzz runs, twice, with shorter bounds).
 * The bounds are nginx's: the connection is half-closed (the answer, then FIN)
 * once LINGER_BYTES more have arrived or the client pauses LINGER_IDLE_MS, and
 * destroyed when it pauses LINGER_IDLE_MS after that or LINGER_TOTAL_MS after
 * the refusal, so a huge body is never read to the end and an idle client holds
 * nothing for long. While the client keeps sending it is never reset early.
 */
const LINGER_IDLE_MS = 5000;
const LINGER_TOTAL_MS = 30_000;
const LINGER_BYTES = 1024 * 1024;

export function lingerThenClose(request: FastifyRequest, reply: FastifyReply): void {
  const req = request.raw;
  const socket = req.socket;
  let seen = 0;
  let halfClosed = false;
  // Half-close: FIN after the answer, while the rest of the body is still read and
  // dropped, so the client reads the answer before any RST.
  const halfClose = () => {
    if (halfClosed) return;
    halfClosed = true;
    if (reply.raw.writableFinished) socket.end();
    else reply.raw.once('finish', () => socket.end());
  };
  const onIdle = () => {
    if (halfClosed) socket.destroy();
    else {
      halfClose();
      idle.refresh();
    }
  };
  // Node's server ends a `Connection: close` exchange (the client's header, or ours)
  // with socket.destroySoon(): a destroy once the answer is written, unread body or
  // not, which is the reset this function exists to avoid. Here it only half-closes,
  // and the bounds below decide when the socket goes.
  socket.destroySoon = halfClose;
  const idle = setTimeout(onIdle, LINGER_IDLE_MS);
  const total = setTimeout(() => socket.destroy(), LINGER_TOTAL_MS);
  idle.unref();
  total.unref();
  const stop = () => {
    clearTimeout(idle);
    clearTimeout(total);
  };
  const bodyEnded = () => {
    stop();
    // Nothing is left unread, so closing cannot reset the client any more: Node's own
    // close applies again, and a socket already half-closed here goes now.
    Reflect.deleteProperty(socket, 'destroySoon');
    if (halfClosed && reply.raw.writableFinished) socket.destroySoon();
  };
  // A stage's async iterator may have left a 'readable' listener, which makes
  // resume() a no-op: drop it so the rest of the body really drains.
  req.removeAllListeners('readable');
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    idle.refresh();
    if (seen > LINGER_BYTES) halfClose();
  });
  req.once('end', bodyEnded);
  socket.once('close', stop);
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
