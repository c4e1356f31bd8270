// What happens before an upload's body is read: refuse a declared size over
// the limit (before any 100 Continue), reserve buffer budget (the socket stays
// unread while waiting), then tell an Expect: 100-continue client to go ahead.
// The returned signal aborts the upload when the client goes away, the
// service is shutting down, or the request reaches its total deadline
// (SLUICE_UPLOAD_DEADLINE_MS, counted from its arrival: the reaper's max age is
// validated against it, so no upload outlives what the reaper assumes).

import { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SluiceError, type ErrorCode } from '../errors.ts';
import type { AppDeps } from './types.ts';

export interface Admission {
  signal: AbortSignal;
  /** Bytes the client declared, if it did. */
  declaredLength: number | undefined;
  release(): void;
}

export async function admitUpload(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: AppDeps,
  opts: { maxBytes: number; tooLarge: ErrorCode },
): Promise<Admission> {
  const route = request.routeOptions.url ?? '';
  try {
    const admission = await admit(request, reply, deps, opts);
    deps.metrics?.uploadsStarted.inc({ route });
    deps.metrics?.uploadsInflight.inc({ route });
    return {
      ...admission,
      release: () => {
        deps.metrics?.uploadsInflight.dec({ route });
        admission.release();
      },
    };
  } catch (err) {
    deps.metrics?.uploadsRejected.inc({ route, reason: (err as Partial<SluiceError> | null)?.code ?? 'INTERNAL' });
    throw err;
  }
}

async function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: AppDeps,
  opts: { maxBytes: number; tooLarge: ErrorCode },
): Promise<Admission> {
  const declaredLength = contentLength(request);
  if (declaredLength !== undefined && declaredLength > opts.maxBytes) {
    throw new SluiceError(opts.tooLarge, { details: { limitBytes: opts.maxBytes } });
  }
  if (deps.drainSignal?.aborted || deps.shutdownSignal?.aborted) throw new SluiceError('SHUTTING_DOWN');

  // One controller per upload, aborted by the client going away or by shutdown. Not
  // AbortSignal.any: each call registers a dependant on the process-long shutdown signal
  // that is dropped only by a later GC, and 10,000 of them are measurable (docs/performance.md).
  const upload = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) upload.abort(new SluiceError('CLIENT_ABORTED'));
  };
  reply.raw.once('close', onClose);
  const shutdown = deps.shutdownSignal;
  const onShutdown = () => upload.abort(shutdown?.reason);
  if (shutdown?.aborted) onShutdown();
  else shutdown?.addEventListener('abort', onShutdown, { once: true });
  const deadlineMs = deps.config.timeouts.uploadDeadlineMs;
  const deadline = setTimeout(
    () => upload.abort(new SluiceError('UPLOAD_DEADLINE_EXCEEDED', { details: { deadlineMs } })),
    Math.max(0, deadlineMs - reply.elapsedTime),
  );
  const signal = upload.signal;
  const unlisten = () => {
    clearTimeout(deadline);
    reply.raw.off('close', onClose);
    shutdown?.removeEventListener('abort', onShutdown);
  };

  const perPut = deps.storage.bufferedBytesPerPut;
  const want = declaredLength === undefined ? perPut : Math.min(perPut, declaredLength + 64 * 1024);
  let releaseBudget: () => void;
  // Stop reading the socket while waiting: otherwise Node keeps reading the body into the
  // request's buffer (up to its 64 KiB high-water mark), and 10,000 waiting uploads would
  // cost 10,000 × 64 KiB of memory instead of sitting in kernel buffers.
  // (Only a real socket: app.inject's stand-in has no reading to stop.)
  const socket = request.raw.socket instanceof Socket ? request.raw.socket : undefined;
  socket?.pause();
  try {
    releaseBudget = await deps.budget.reserve(want, { timeoutMs: deps.config.timeouts.uploadQueueMs, signal });
  } catch (err) {
    unlisten();
    throw err;
  } finally {
    socket?.resume();
  }
  if (/^100-continue$/i.test(String(request.headers.expect ?? ''))) reply.raw.writeContinue();
  return {
    signal,
    declaredLength,
    release: () => {
      releaseBudget();
      unlisten();
    },
  };
}

function contentLength(request: FastifyRequest): number | undefined {
  const raw = request.headers['content-length'];
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new SluiceError('INVALID_CONTENT_LENGTH');
  return Number(raw);
}
