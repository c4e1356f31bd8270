// POST|HEAD|PATCH|DELETE|OPTIONS /v1/uploads[/:id] — resumable uploads, tus 1.0
// (core, creation, creation-with-upload, creation-defer-length, termination,
// expiration, checksum). The protocol is @tus/server's; this route hands it
// each request as a web Request carrying the tenant, streams the body through
// unread by Fastify, and renders sluice's own refusals as the usual JSON
// errors (with Tus-Resumable). Registered in the upload context, whose
// content-type parser passes bodies through untouched. A request with a body
// (PATCH, POST) is admitted like every other upload (upload-admission.ts):
// refused while draining, within the buffer budget, cut off at its total
// deadline (the bytes stored so far stay resumable). See docs/tus.md.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TUS_RESUMABLE } from '@tus/utils';
import { CHECKSUM_ALGORITHMS, SpoolBudget, parseUploadChecksum, spoolVerified, type SpooledBody } from '../../tus/checksum.ts';
import { fromTusAnswer, fromTusError } from '../../tus/protocol-errors.ts';
import { bodyLength } from '../../tus/s3-part-store.ts';
import { TUS_PATH, createTusService, type TusRequestContext } from '../../tus/service.ts';
import { isSluiceError } from '../../errors.ts';
import { admitUpload, type Admission } from '../upload-admission.ts';
import type { RouteOptions } from './index.ts';
import { createResumableHttp } from '../resumable.ts';

const METHODS = ['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export async function tusUploadsRoute(app: FastifyInstance, { deps }: RouteOptions): Promise<void> {
  const { config } = deps;
  const tus = await createTusService({ config, storage: deps.storage, log: deps.log, shutdownSignal: deps.shutdownSignal, jobs: deps.jobs });
  app.addHook('onClose', () => tus.close());
  // The IETF resumable-upload draft on the same resources, told apart by header (docs/resumable.md).
  const draft = createResumableHttp(deps, tus);
  const spoolBudget = new SpoolBudget(config.tus.checksumSpoolBytes);

  if (config.tus.sweepIntervalMs > 0) {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      tus
        .sweep()
        .catch((err: unknown) => deps.log.error({ err }, 'tus expiry sweep failed'))
        .finally(() => {
          running = false;
        });
    }, config.tus.sweepIntervalMs);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (draft.claims(request)) return draft.handle(request, reply);
    reply.header('tus-resumable', TUS_RESUMABLE);
    let spooled: SpooledBody | undefined;
    let admission: Admission | undefined;
    const id = (request.params as { id?: string }).id;
    try {
      if (id !== undefined && isRetriedFinalPatch(request)) {
        // A zero-byte final PATCH on an upload whose bytes are all stored (its finish failed before,
        // or a client retried): nothing to write, so commit (once) and answer as the finish would.
        // Handed to the store instead, S3 would be asked to complete its multipart upload again.
        const size = await tus.completedSize(request.tenant, id);
        if (size !== undefined && request.headers['upload-offset'] === String(size)) {
          for (const [name, value] of Object.entries(await tus.settleComplete(request.tenant, id, request.log))) reply.header(name, value);
          reply.header('upload-offset', String(size));
          return reply.code(204).send();
        }
      }
      const headers = new Headers();
      for (const [name, value] of Object.entries(request.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      let body: ReadableStream<Uint8Array> | undefined;
      if (request.method === 'PATCH' || request.method === 'POST') {
        admission = await admitUpload(request, reply, deps, { maxBytes: config.limits.fileBytes, tooLarge: 'FILE_TOO_LARGE' });
        // Read without destroying the request on failure, so the refusal can still be answered.
        const source = untilAborted(request.raw.iterator({ destroyOnReturn: false }), admission.signal);
        const checksum = request.headers['upload-checksum'];
        if (typeof checksum === 'string' && request.method === 'PATCH') {
          spooled = await spoolVerified(source, parseUploadChecksum(checksum), {
            maxBytes: config.limits.fileBytes,
            signal: admission.signal,
            budget: spoolBudget,
          });
          headers.set('content-length', String(spooled.size));
          body = Readable.toWeb(spooled.open()) as ReadableStream<Uint8Array>;
        } else {
          body = Readable.toWeb(Readable.from(source, { objectMode: false })) as ReadableStream<Uint8Array>;
        }
      }
      // A fixed origin: @tus/server reads only the path (Locations are relative), and a hostile Host header cannot break the URL.
      const webRequest = new Request(`http://sluice.invalid${request.url}`, {
        method: request.method,
        headers,
        ...(body ? { body, duplex: 'half' } : {}),
      });
      const ctx: TusRequestContext = { tenant: request.tenant, log: request.log };
      tus.contexts.set(webRequest, ctx);
      const length = headers.get('content-length');
      // The store streams whole parts of a body whose length it knows (s3-part-store.ts).
      const res = await bodyLength.run(length !== null && /^\d+$/.test(length) ? Number(length) : undefined, () => tus.server.handleWeb(webRequest));
      // The store has read the spooled body: its disk space is free before the client hears back.
      await spooled?.remove();
      spooled = undefined;
      // tus's headers (Tus-Resumable, CORS, Connection: close after an abort) go on every answer, errors too.
      res.headers.forEach((value, name) => {
        if (name !== 'content-length' && name !== 'content-type') reply.header(name, value);
      });
      // The deadline or the shutdown cut the body off: answer that, whatever the store made of the short body.
      const cut: unknown = admission?.signal.aborted ? admission.signal.reason : undefined;
      if (isSluiceError(cut)) throw cut;
      if (ctx.error !== undefined) throw ctx.error;
      // Answers @tus/server writes itself (412, a malformed tus header): the same JSON errors.
      if (res.status >= 400) throw fromTusAnswer(res.status, await res.text());
      if (request.method === 'HEAD' && res.status === 200 && id !== undefined && isComplete(res.headers)) {
        // Every byte is here: name the file, committing it now if its finish failed before
        // (tus-js-client resumes with HEAD and, on a complete upload, sends no PATCH).
        for (const [name, value] of Object.entries(await tus.settleComplete(request.tenant, id, request.log))) reply.header(name, value);
      }
      if (request.method === 'OPTIONS') reply.header('tus-checksum-algorithm', CHECKSUM_ALGORITHMS.join(',')).headers(draft.discovery());
      const text = res.body ? await res.text() : '';
      return reply.code(res.status).send(text === '' ? undefined : text);
    } catch (err) {
      // The locker's timeout reaches here from settleComplete, outside @tus/server.
      throw fromTusError(err) ?? err;
    } finally {
      admission?.release();
      await spooled?.remove();
    }
  }

  for (const url of [TUS_PATH, `${TUS_PATH}/:id`]) {
    app.route({ method: [...METHODS], url, exposeHeadRoute: false, config: { scope: 'files:write' }, handler: handle });
  }
}

function isRetriedFinalPatch(request: FastifyRequest): boolean {
  return (
    request.method === 'PATCH' &&
    request.headers['content-length'] === '0' &&
    request.headers['tus-resumable'] === TUS_RESUMABLE &&
    request.headers['content-type'] === 'application/offset+octet-stream'
  );
}

function isComplete(headers: Headers): boolean {
  const offset = headers.get('upload-offset');
  return offset !== null && offset === headers.get('upload-length');
}

/** The body until `signal` aborts; then fails with its reason at once, even while the client sends nothing. */
async function* untilAborted(source: AsyncIterator<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    for (;;) {
      const r = await Promise.race([source.next(), aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}
