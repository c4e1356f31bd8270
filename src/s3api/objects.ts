// Object and bucket operations: PutObject, GetObject (Range), HeadObject,
// DeleteObject, ListObjectsV2 (and V1), HeadBucket, CreateBucket of one's own
// bucket. Every object put here is a sluice file: the same stageFile →
// commitFiles path as PUT /v1/files, so type, size and sha256 checks, the
// manifest, jobs and webhooks are the same whatever protocol brought the bytes.

import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { deleteFileObjects, readManifest } from '../core/files.ts';
import { commitFiles, discardStaged, stageFile, type IngestDeps } from '../core/ingest.ts';
import { sanitizeFileName } from '../core/names.ts';
import { parsePath } from '../core/paths.ts';
import { isSluiceError } from '../errors.ts';
import { parseRange, etagMatches } from '../http/range.ts';
import type { AppDeps } from '../http/types.ts';
import { admitUpload } from '../http/upload-admission.ts';
import { logUpload } from '../http/routes/upload-multipart.ts';
import { uploadBody } from './body.ts';
import { sha256Base64 } from './checksums.ts';
import { S3Error } from './errors.ts';
import { notFound, ObjectIndex, type IndexEntry } from './object-index.ts';
import { S3_PREFIX } from './s3-auth.ts';
import { splitUrl, type VerifiedRequest } from './sigv4.ts';
import { listObjectsV2Xml } from './xml.ts';

export interface S3Target {
  bucket: string;
  /** The object key, validated as a sluice path (NFC); undefined for bucket operations. */
  key: string | undefined;
  query: Record<string, string | string[]>;
}

/** Bucket and key of a path-style URL; the bucket must be the caller's own (its tenant). */
export function target(request: FastifyRequest): S3Target {
  const { path, query } = splitUrl(request.url);
  const rest = path.slice(S3_PREFIX.length + 1);
  const slash = rest.indexOf('/');
  const bucket = decodeURIComponent(slash === -1 ? rest : rest.slice(0, slash));
  const rawKey = slash === -1 ? '' : decodeURIComponent(rest.slice(slash + 1));
  // One virtual bucket per tenant; any other bucket, existing or not, is refused alike.
  if (bucket !== request.tenant) throw new S3Error('AccessDenied', 'Access Denied: this access key reaches only the bucket named after its tenant');
  if (rawKey === '') return { bucket, key: undefined, query };
  try {
    return { bucket, key: parsePath(rawKey), query };
  } catch (err) {
    throw new S3Error('InvalidArgument', `The key is not valid here: ${(err as Error).message}`, { cause: err });
  }
}

export function verifiedOf(request: FastifyRequest): VerifiedRequest {
  if (!request.s3) throw new Error('an /s3 route ran without s3-auth');
  return request.s3;
}

export function quotedEtag(sha256: string): string {
  return `"${sha256}"`;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class ObjectOperations {
  readonly #deps: AppDeps;
  readonly index: ObjectIndex;

  constructor(deps: AppDeps) {
    this.#deps = deps;
    this.index = new ObjectIndex(deps.storage, deps.config.keyPrefix);
  }

  ingestDeps(request: FastifyRequest): IngestDeps {
    return { config: this.#deps.config, storage: this.#deps.storage, log: request.log, jobs: this.#deps.jobs };
  }

  async headBucket(_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return reply.code(200).header('x-amz-bucket-region', 'us-east-1').send();
  }

  /** CreateBucket of one's own bucket: it always exists, so this succeeds (as S3 in us-east-1 does for an owner). */
  async createBucket(request: FastifyRequest, reply: FastifyReply, t: S3Target): Promise<FastifyReply> {
    request.raw.resume();
    return reply.code(200).header('location', `/${t.bucket}`).send();
  }

  async putObject(request: FastifyRequest, reply: FastifyReply, t: S3Target & { key: string }): Promise<FastifyReply> {
    if (request.headers['x-amz-copy-source'] !== undefined) throw new S3Error('NotImplemented', 'CopyObject is not supported by this endpoint');
    const started = performance.now();
    const { config } = this.#deps;
    const body = uploadBody(request, verifiedOf(request), config.limits.fileBytes);
    const admission = await admitUpload(request, reply, this.#deps, { maxBytes: chunkedMax(config.limits.fileBytes, request), tooLarge: 'FILE_TOO_LARGE' });
    const ingest = this.ingestDeps(request);
    const route = `${S3_PREFIX}/:bucket/*`;
    try {
      const staged = await stageFile(ingest, {
        tenant: request.tenant,
        name: sanitizeFileName(t.key),
        path: t.key,
        source: body.source,
        declaredType: s3DeclaredType(request.headers['content-type']),
        expectedSha256: body.expectedSha256,
        signal: admission.signal,
        declaredSize: body.declaredSize,
      });
      await commitFiles(ingest, [staged]);
      try {
        await this.replace(request, t.key, { id: staged.id, size: staged.size, sha256: staged.sha256, lastModified: staged.createdAt });
      } catch (err) {
        await discardStaged(ingest, [staged]);
        throw err;
      }
      logUpload(request.log, [staged], started, undefined, { metrics: this.#deps.metrics, route });
      return reply.code(200).header('etag', quotedEtag(staged.sha256)).header('x-amz-checksum-sha256', sha256Base64(staged.sha256)).send();
    } catch (err) {
      logUpload(request.log, [], started, err, { metrics: this.#deps.metrics, route });
      throw err;
    } finally {
      admission.release();
    }
  }

  /** Point the key at a committed file, then remove the file it pointed at before. */
  async replace(request: FastifyRequest, key: string, entry: IndexEntry): Promise<void> {
    const old = await this.index.set(request.tenant, key, entry);
    if (old !== undefined && old !== entry.id) await this.#deleteFile(request, old);
  }

  async #deleteFile(request: FastifyRequest, id: string): Promise<void> {
    try {
      await deleteFileObjects(this.#deps.storage, this.#deps.config.keyPrefix, request.tenant, id);
    } catch (err) {
      // The key already points elsewhere; what is left of the old file is debris, visible in /v1 until removed.
      request.log.error({ err, fileId: id }, 'could not remove the file an S3 key pointed at before');
    }
  }

  async getObject(request: FastifyRequest, reply: FastifyReply, t: S3Target & { key: string }): Promise<FastifyReply> {
    const found = await this.index.get(request.tenant, t.key);
    if (!found) throw notFound(t.key);
    let m;
    try {
      m = await readManifest(this.#deps.storage, this.#deps.config.keyPrefix, request.tenant, found.entry.id);
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') throw notFound(t.key); // deleted through /v1
      throw err;
    }
    const etag = quotedEtag(m.sha256);
    reply
      .header('etag', etag)
      .header('last-modified', new Date(m.createdAt).toUTCString())
      .header('accept-ranges', 'bytes')
      .header('content-type', m.type.mime)
      .header('x-content-type-options', 'nosniff');
    if (etagMatches(one(request.headers['if-none-match']), etag)) return reply.code(304).send();
    const ifMatch = one(request.headers['if-match']);
    if (ifMatch !== undefined && !etagMatches(ifMatch, etag)) throw new S3Error('InvalidRequest', 'At least one of the pre-conditions you specified did not hold', { status: 412 });
    const range = parseRange(one(request.headers.range), m.size);
    if (range.kind === 'unsatisfiable') {
      throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { headers: { 'content-range': `bytes */${m.size}` } });
    }
    const length = range.kind === 'range' ? range.range.end - range.range.start + 1 : m.size;
    reply.code(range.kind === 'range' ? 206 : 200).header('content-length', String(length));
    if (range.kind === 'range') reply.header('content-range', `bytes ${range.range.start}-${range.range.end}/${m.size}`);
    // The whole object's sha256, for clients that validate (x-amz-checksum-mode: ENABLED); never for a part of it.
    else if (/^enabled$/i.test(one(request.headers['x-amz-checksum-mode']) ?? '')) {
      reply.header('x-amz-checksum-sha256', sha256Base64(m.sha256)).header('x-amz-checksum-type', 'FULL_OBJECT');
    }
    if (request.method === 'HEAD') return reply.send();
    const { body } = await this.#deps.storage.get(m.original.key, range.kind === 'range' ? { range: range.range } : {});
    return reply.send(body);
  }

  async deleteObject(request: FastifyRequest, reply: FastifyReply, t: S3Target & { key: string }): Promise<FastifyReply> {
    const entry = await this.index.delete(request.tenant, t.key);
    if (entry) await this.#deleteFile(request, entry.id);
    // S3 answers 204 whether or not the key existed.
    return reply.code(204).send();
  }

  async listObjects(request: FastifyRequest, reply: FastifyReply, t: S3Target): Promise<FastifyReply> {
    const q = (name: string) => one(t.query[name]);
    if (q('uploads') !== undefined) throw new S3Error('NotImplemented', 'ListMultipartUploads is not supported by this endpoint');
    const v2 = q('list-type') === '2';
    const delimiter = q('delimiter');
    if (delimiter !== undefined && delimiter !== '' && delimiter !== '/') throw new S3Error('NotImplemented', 'Only "/" is supported as a delimiter');
    const maxKeysRaw = q('max-keys');
    const maxKeys = maxKeysRaw === undefined ? 1000 : /^\d{1,7}$/.test(maxKeysRaw) ? Math.min(1000, Number(maxKeysRaw)) : NaN;
    if (Number.isNaN(maxKeys)) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative number');
    const prefix = listKey(q('prefix') ?? '', 'prefix');
    const token = q('continuation-token');
    const startAfter = q(v2 ? 'start-after' : 'marker');
    let after: string | undefined = startAfter === undefined || startAfter === '' ? undefined : listKey(startAfter, 'start-after');
    if (v2 && token !== undefined) after = decodeToken(token);
    const d = delimiter === '/' ? ('/' as const) : undefined;
    const page = maxKeys === 0 ? { objects: [], prefixes: [], truncated: false } : await this.index.list(request.tenant, { prefix, delimiter: d, startAfter: after, limit: maxKeys });
    const last = [...page.objects.map((o) => o.key), ...page.prefixes].sort().at(-1);
    const next = page.truncated && last !== undefined ? last : undefined;
    const xml = listObjectsV2Xml({
      bucket: t.bucket,
      prefix,
      delimiter: d,
      maxKeys,
      objects: page.objects.map((o) => ({ key: o.key, lastModified: o.entry.lastModified, etag: quotedEtag(o.entry.sha256), size: o.entry.size })),
      commonPrefixes: page.prefixes,
      truncated: page.truncated,
      continuationToken: v2 ? token : undefined,
      nextContinuationToken: v2 && next !== undefined ? Buffer.from(next, 'utf8').toString('base64url') : undefined,
      startAfter: v2 ? startAfter : undefined,
      encodeUrl: q('encoding-type') === 'url',
      v1: v2 ? undefined : { marker: startAfter ?? '', nextMarker: next },
    });
    return reply.code(200).type('application/xml').send(xml);
  }
}

/** aws-chunked adds framing to Content-Length: the file limit applies to the decoded bytes (byte-limit stage). */
function chunkedMax(fileBytes: number, request: FastifyRequest): number {
  return request.headers['x-amz-decoded-content-length'] !== undefined ? Number.MAX_SAFE_INTEGER : fileBytes;
}

/** S3 clients send binary/octet-stream as "I don't know": the bytes decide (sniff), as with no type. */
export function s3DeclaredType(ct: string | undefined): string | undefined {
  if (ct === undefined || /^binary\/octet-stream\b/i.test(ct)) return undefined;
  return ct;
}

function listKey(raw: string, what: string): string {
  if (raw === '') return '';
  try {
    return parsePath(raw, { prefix: true });
  } catch (err) {
    throw new S3Error('InvalidArgument', `The ${what} is not valid here: ${(err as Error).message}`, { cause: err });
  }
}

function decodeToken(token: string): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (token === '' || key === '') throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect');
  return listKey(key, 'continuation token');
}

export function newUploadId(): string {
  return randomUUID().replace(/-/g, '');
}
