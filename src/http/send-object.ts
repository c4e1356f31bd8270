// Streams a stored object (an original or a variant) with conditional and
// range handling: ETag is the sha256, so it is strong and identical across
// backends and instances.

import { create as contentDisposition } from 'content-disposition';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SluiceError } from '../errors.ts';
import { canRenderScript, isInlineSafe } from '../core/file-types.ts';
import type { Manifest } from '../core/manifest.ts';
import type { Storage } from '../storage/storage.ts';
import { reprDigest } from './digest-header.ts';
import { etagMatches, parseRange } from './range.ts';

export interface StoredObject {
  key: string;
  size: number;
  sha256: string;
  mime: string;
  /** Name offered to the browser when saving. */
  filename: string;
  lastModified: string;
}

/** A file's original, as sendObject serves it. */
export function originalOf(m: Manifest): StoredObject {
  return { key: m.original.key, size: m.size, sha256: m.sha256, mime: m.type.mime, filename: m.name, lastModified: m.createdAt };
}

export async function sendObject(
  request: FastifyRequest<{ Querystring: { download?: string } }>,
  reply: FastifyReply,
  storage: Storage,
  obj: StoredObject,
): Promise<FastifyReply> {
  const etag = `"${obj.sha256}"`;
  const forceDownload = request.query.download !== undefined && request.query.download !== '0';
  const disposition = !forceDownload && isInlineSafe(obj.mime) ? 'inline' : 'attachment';
  const textual = obj.mime.startsWith('text/') || obj.mime === 'application/json';
  reply
    .header('etag', etag)
    .header('last-modified', new Date(obj.lastModified).toUTCString())
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('repr-digest', reprDigest(obj.sha256))
    .header('content-disposition', contentDisposition(obj.filename, { type: disposition }))
    .header('content-type', textual ? `${obj.mime}; charset=utf-8` : obj.mime);
  if (canRenderScript(obj.mime)) reply.header('content-security-policy', "default-src 'none'; sandbox");

  if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();

  const ifRange = request.headers['if-range'];
  const rangeHeader = ifRange === undefined || String(ifRange).trim() === etag ? request.headers.range : undefined;
  const range = parseRange(rangeHeader, obj.size);
  if (range.kind === 'unsatisfiable') {
    throw new SluiceError('RANGE_NOT_SATISFIABLE', { headers: { 'content-range': `bytes */${obj.size}` } });
  }
  const status = range.kind === 'range' ? 206 : 200;
  const length = range.kind === 'range' ? range.range.end - range.range.start + 1 : obj.size;
  reply.code(status).header('content-length', String(length));
  if (range.kind === 'range') reply.header('content-range', `bytes ${range.range.start}-${range.range.end}/${obj.size}`);
  if (request.method === 'HEAD') return reply.send();
  const { body } = await storage.get(obj.key, range.kind === 'range' ? { range: range.range } : {});
  return reply.send(body);
}
