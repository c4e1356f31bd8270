// Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
// AbortMultipartUpload, ListParts. Parts may arrive in any order and at once
// (lib-storage sends four in parallel), but sluice validates a file as one
// stream (its type from the first bytes, sha256 over all of them), so parts are
// kept as they come and CompleteMultipartUpload streams them, in order, through
// the same pipeline as PutObject into one new file. Nothing is visible until
// then. State, per upload:
//
//   <prefix>/_system/s3/<tenant>/uploads/<uploadId>/upload.json         { key, contentType, createdAt }
//   <prefix>/_system/s3/<tenant>/uploads/<uploadId>/parts/<n>.json      { etag, size, data, lastModified }
//   <prefix>/_system/s3/<tenant>/uploads/<uploadId>/parts/<n>-<attempt> the part's bytes
//
// A part is written under a fresh attempt name, then its record points at it,
// then a replaced attempt is removed: a retried part never mixes two bodies.

import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { commitFiles, discardStaged, stageFile } from '../core/ingest.ts';
import { admitType, detectType, SNIFF_BYTES } from '../core/file-types.ts';
import { sanitizeFileName } from '../core/names.ts';
import { byteLimit } from '../core/stages/byte-limit.ts';
import { idleTimeout } from '../core/stages/idle-timeout.ts';
import { SluiceError, isSluiceError } from '../errors.ts';
import type { AppDeps } from '../http/types.ts';
import { admitUpload } from '../http/upload-admission.ts';
import { logUpload } from '../http/routes/upload-multipart.ts';
import { bytesOf, readSmallObject, type Storage } from '../storage/storage.ts';
import { uploadBody } from './body.ts';
import { S3Error } from './errors.ts';
import { uploadsPrefix } from './object-index.ts';
import { removeS3Upload } from './upload-sweep.ts';
import { newUploadId, quotedEtag, s3DeclaredType, verifiedOf, type ObjectOperations, type S3Target } from './objects.ts';
import { S3_PREFIX } from './s3-auth.ts';
import { completeMultipartXml, initiateMultipartXml, listPartsXml, parseCompleteMultipart, type ListedPart } from './xml.ts';

type Keyed = S3Target & { key: string };

interface UploadMeta {
  key: string;
  contentType?: string | undefined;
  createdAt: string;
}

interface PartRecord {
  etag: string;
  size: number;
  data: string;
  lastModified: string;
}

const MAX_PARTS = 10_000;
/** S3's smallest part but the last. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/** A CompleteMultipartUpload body lists at most 10,000 parts of ~100 bytes each. */
const MAX_COMPLETE_BODY = 2 * 1024 * 1024;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

const pad = (n: number) => String(n).padStart(5, '0');

export class MultipartOperations {
  readonly #deps: AppDeps;
  readonly #objects: ObjectOperations;
  readonly #storage: Storage;

  constructor(deps: AppDeps, objects: ObjectOperations) {
    this.#deps = deps;
    this.#objects = objects;
    this.#storage = deps.storage;
  }

  #base(tenant: string, uploadId: string): string {
    return `${uploadsPrefix(this.#deps.config.keyPrefix, tenant)}${uploadId}/`;
  }

  async create(request: FastifyRequest, reply: FastifyReply, t: Keyed): Promise<FastifyReply> {
    request.raw.resume();
    const uploadId = newUploadId();
    const meta: UploadMeta = { key: t.key, contentType: s3DeclaredType(request.headers['content-type']), createdAt: new Date().toISOString() };
    await this.#storage.put(`${this.#base(request.tenant, uploadId)}upload.json`, bytesOf(Buffer.from(JSON.stringify(meta))), { contentType: 'application/json' });
    return reply.code(200).type('application/xml').send(initiateMultipartXml(t.bucket, t.key, uploadId));
  }

  /** The upload's id and state; NoSuchUpload for an unknown id or one made for another key. */
  async #upload(request: FastifyRequest, t: Keyed): Promise<{ uploadId: string; base: string; meta: UploadMeta }> {
    const raw = t.query.uploadId;
    const uploadId = typeof raw === 'string' ? raw : '';
    const noSuch = new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
    if (!UPLOAD_ID.test(uploadId)) throw noSuch;
    const base = this.#base(request.tenant, uploadId);
    let meta: UploadMeta;
    try {
      meta = JSON.parse((await readSmallObject(this.#storage, `${base}upload.json`)).toString('utf8')) as UploadMeta;
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') throw noSuch;
      throw err;
    }
    if (meta.key !== t.key) throw noSuch;
    return { uploadId, base, meta };
  }

  async #record(base: string, n: number): Promise<PartRecord | undefined> {
    try {
      return JSON.parse((await readSmallObject(this.#storage, `${base}parts/${pad(n)}.json`)).toString('utf8')) as PartRecord;
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return undefined;
      throw err;
    }
  }

  async uploadPart(request: FastifyRequest, reply: FastifyReply, t: Keyed): Promise<FastifyReply> {
    if (request.headers['x-amz-copy-source'] !== undefined) throw new S3Error('NotImplemented', 'UploadPartCopy is not supported by this endpoint');
    const rawN = t.query.partNumber;
    const n = typeof rawN === 'string' && /^\d{1,5}$/.test(rawN) ? Number(rawN) : NaN;
    if (!(n >= 1 && n <= MAX_PARTS)) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
    const { base, meta } = await this.#upload(request, t);
    const { config } = this.#deps;
    const body = uploadBody(request, verifiedOf(request), config.limits.fileBytes);
    const admission = await admitUpload(request, reply, this.#deps, { maxBytes: decodedMax(config.limits.fileBytes, request), tooLarge: 'FILE_TOO_LARGE' });
    const data = `${base}parts/${pad(n)}-${randomBytes(8).toString('hex')}`;
    try {
      const md5 = createHash('md5');
      const sha = body.expectedSha256 ? createHash('sha256') : undefined;
      let size = 0;
      await pipeline(
        body.source,
        idleTimeout(config.timeouts.uploadIdleMs),
        byteLimit(config.limits.fileBytes),
        // Part 1 holds the file's first bytes: a type the allowlist refuses is refused now, not after
        // gigabytes of further parts. CompleteMultipartUpload still checks the whole file.
        n === 1 ? headTypeCheck(config.allowedTypes, meta.contentType) : passThrough,
        async function* measure(source: AsyncIterable<Uint8Array>) {
          for await (const chunk of source) {
            md5.update(chunk);
            sha?.update(chunk);
            size += chunk.byteLength;
            yield chunk;
          }
          // Checked before the put can finish, so a corrupt part is never stored.
          if (sha && !sha.digest().equals(body.expectedSha256!)) throw new SluiceError('CHECKSUM_MISMATCH');
        },
        async (source: AsyncIterable<Uint8Array>) => {
          await this.#storage.put(data, source, { contentType: 'application/octet-stream', signal: admission.signal, sizeHint: body.declaredSize });
        },
        { signal: admission.signal },
      );
      const etag = quotedEtag(md5.digest('hex'));
      const previous = await this.#record(base, n);
      const record: PartRecord = { etag, size, data, lastModified: new Date().toISOString() };
      await this.#storage.put(`${base}parts/${pad(n)}.json`, bytesOf(Buffer.from(JSON.stringify(record))), { contentType: 'application/json' });
      if (previous && previous.data !== data) await this.#storage.delete(previous.data).catch((err: unknown) => request.log.warn({ err }, 'could not remove a replaced part'));
      return reply.code(200).header('etag', etag).send();
    } catch (err) {
      await this.#storage.delete(data).catch(() => undefined);
      throw err;
    } finally {
      admission.release();
    }
  }

  async #records(base: string): Promise<{ n: number; record: PartRecord }[]> {
    const out: { n: number; record: PartRecord }[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.#storage.list({ prefix: `${base}parts/`, startAfter, limit: 1000 });
      for (const o of page.objects) {
        const m = /\/parts\/(\d{5})\.json$/.exec(o.key);
        if (!m) continue;
        const record = await this.#record(base, Number(m[1]));
        if (record) out.push({ n: Number(m[1]), record });
      }
      if (!page.truncated || page.objects.length === 0) return out;
      startAfter = page.objects.at(-1)!.key;
    }
  }

  async listParts(request: FastifyRequest, reply: FastifyReply, t: Keyed): Promise<FastifyReply> {
    const { uploadId, base } = await this.#upload(request, t);
    const q = (name: string) => (typeof t.query[name] === 'string' ? (t.query[name] as string) : undefined);
    const maxParts = Math.min(1000, Math.max(0, Number(q('max-parts') ?? 1000) || 0));
    const marker = Math.max(0, Number(q('part-number-marker') ?? 0) || 0);
    const all = (await this.#records(base)).filter((p) => p.n > marker);
    const parts: ListedPart[] = all.slice(0, maxParts).map((p) => ({ partNumber: p.n, etag: p.record.etag, size: p.record.size, lastModified: p.record.lastModified }));
    return reply
      .code(200)
      .type('application/xml')
      .send(listPartsXml({ bucket: t.bucket, key: t.key, uploadId, parts, maxParts, marker, truncated: all.length > maxParts }));
  }

  async abort(request: FastifyRequest, reply: FastifyReply, t: Keyed): Promise<FastifyReply> {
    const { base } = await this.#upload(request, t);
    await removeS3Upload(this.#storage, base);
    return reply.code(204).send();
  }


  async complete(request: FastifyRequest, reply: FastifyReply, t: Keyed): Promise<FastifyReply> {
    const started = performance.now();
    const { base, meta } = await this.#upload(request, t);
    const xml = await readBody(request, MAX_COMPLETE_BODY);
    const payload = verifiedOf(request).payload;
    if (payload.kind === 'sha256' && createHash('sha256').update(xml, 'utf8').digest('hex') !== payload.hex) {
      throw new S3Error('BadDigest', 'The provided x-amz-content-sha256 does not match what was computed.');
    }
    const listed = parseCompleteMultipart(xml);
    if (!listed || listed.length === 0) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
    const parts: PartRecord[] = [];
    for (let i = 0; i < listed.length; i++) {
      const p = listed[i]!;
      if (i > 0 && p.partNumber <= listed[i - 1]!.partNumber) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order.');
      const record = await this.#record(base, p.partNumber);
      if (!record || record.etag.replace(/"/g, '') !== p.etag.replace(/"/g, '')) {
        throw new S3Error('InvalidPart', `Part ${p.partNumber} was not uploaded, or its ETag does not match.`);
      }
      parts.push(record);
    }
    for (let i = 0; i < parts.length - 1; i++) {
      if (parts[i]!.size < MIN_PART_BYTES) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
    }
    const size = parts.reduce((s, p) => s + p.size, 0);
    if (size > this.#deps.config.limits.fileBytes) throw new SluiceError('FILE_TOO_LARGE', { details: { limitBytes: this.#deps.config.limits.fileBytes } });
    // The assembled file is written like any upload, so it takes its share of the buffer budget (the
    // request's own body was a small XML document); the client going away aborts it.
    const admission = await admitUpload(request, reply, this.#deps, { maxBytes: Number.MAX_SAFE_INTEGER, tooLarge: 'FILE_TOO_LARGE' });
    const release = await this.#deps.budget.reserve(this.#storage.bufferedBytesPerPut, { timeoutMs: this.#deps.config.timeouts.uploadQueueMs, signal: admission.signal });
    const ingest = this.#objects.ingestDeps(request);
    const storage = this.#storage;
    const route = `${S3_PREFIX}/:bucket/*?uploadId`;
    try {
      const staged = await stageFile(ingest, {
        tenant: request.tenant,
        name: sanitizeFileName(t.key),
        path: t.key,
        source: (async function* concatenate() {
          for (const p of parts) {
            const { body } = await storage.get(p.data, { signal: admission.signal });
            yield* body as AsyncIterable<Uint8Array>;
          }
        })(),
        declaredType: meta.contentType,
        signal: admission.signal,
        declaredSize: size,
      });
      await commitFiles(ingest, [staged]);
      try {
        await this.#objects.replace(request, t.key, { id: staged.id, size: staged.size, sha256: staged.sha256, lastModified: staged.createdAt });
      } catch (err) {
        await discardStaged(ingest, [staged]);
        throw err;
      }
      logUpload(request.log, [staged], started, undefined, { metrics: this.#deps.metrics, route });
      await removeS3Upload(this.#storage, base).catch((err: unknown) => request.log.warn({ err }, 'could not remove a completed multipart upload'));
      const location = `${S3_PREFIX}/${t.bucket}/${t.key}`;
      return reply.code(200).type('application/xml').send(completeMultipartXml(location, t.bucket, t.key, quotedEtag(staged.sha256)));
    } catch (err) {
      logUpload(request.log, [], started, err, { metrics: this.#deps.metrics, route });
      throw err;
    } finally {
      release();
      admission.release();
    }
  }
}

/** Refuses a part whose first SNIFF_BYTES are of a type the allowlist (or the declared type) refuses. */
function headTypeCheck(allowed: readonly string[], declared: string | undefined) {
  return async function* headType(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const head: Uint8Array[] = [];
    let bytes = 0;
    let checked = false;
    for await (const chunk of source) {
      if (checked) {
        yield chunk;
        continue;
      }
      head.push(chunk);
      bytes += chunk.byteLength;
      if (bytes < SNIFF_BYTES) continue;
      const buf = Buffer.concat(head);
      admitType(await detectType(buf.subarray(0, SNIFF_BYTES), declared), declared, allowed);
      checked = true;
      yield buf;
    }
    if (!checked && bytes > 0) {
      const buf = Buffer.concat(head);
      admitType(await detectType(buf, declared), declared, allowed);
      yield buf;
    }
  };
}

async function* passThrough(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* source;
}

function decodedMax(fileBytes: number, request: FastifyRequest): number {
  return request.headers['x-amz-decoded-content-length'] !== undefined ? Number.MAX_SAFE_INTEGER : fileBytes;
}

async function readBody(request: FastifyRequest, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of request.raw) {
    n += (chunk as Buffer).length;
    if (n > max) throw new S3Error('MalformedXML', 'The CompleteMultipartUpload document is too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
