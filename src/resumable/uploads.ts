// The draft's operations on an upload resource (creation, offset retrieval,
// append, cancellation, discovery), built on the tus building blocks so that
// every byte takes the same path as a tus upload: the same store (type check
// at the first bytes, sha256 carried across writes, keep-what-arrived on a
// drop, idle timeout), the same lock (in the bucket across instances on S3),
// the same pending marker and sweep, and the same finish, which commits the
// manifest once. Nothing here imports fastify: the HTTP glue
// (http/resumable.ts) hands in plain headers and the body, and renders the
// Answer or the thrown SluiceError.
//
// Completeness: the draft's upload is complete when the client says so
// (Upload-Complete: ?1); the tus store's when offset = length. A request that
// completes the upload fixes the length first (Upload-Length, or offset +
// Content-Length, or, for a body of unknown length, the offset it reached),
// so the two agree; an upload whose every byte of a known length is stored is
// reported complete and committed, as tus does, since nothing more may be
// appended to it anyway.

import { Readable } from 'node:stream';
import { parse as parseDisposition } from 'content-disposition';
import { ERRORS, Upload, type Lock, type Locker } from '@tus/utils';
import type { Config } from '../config.ts';
import type { CoreLog } from '../core/ingest.ts';
import { fileKeys, isFileId, newFileId } from '../core/keys.ts';
import { readManifest } from '../core/files.ts';
import { isSluiceError, SluiceError } from '../errors.ts';
import { fileView } from '../http/file-view.ts';
import { bytesOf, type Storage } from '../storage/storage.ts';
import { translate } from '../storage/s3-errors.ts';
import { removeUpload } from '../tus/finish.ts';
import { fromTusError } from '../tus/protocol-errors.ts';
import { pendingKey, uploadKey, type UploadRef } from '../tus/keys.ts';
import { bodyLength } from '../tus/s3-part-store.ts';
import type { TusStore } from '../tus/store.ts';
import { boundedBody, releasable, type Release } from './body.ts';
import {
  PARTIAL_UPLOAD,
  completeHeader,
  contentLength,
  isAppendContentType,
  requestComplete,
  uploadLength,
  uploadLimitHeader,
  uploadOffset,
  type Headers,
  type InteropVersion,
} from './interop.ts';

export const UPLOADS_PATH = '/v1/uploads';

/** What the tus service lends: its store, its lock, and its commit-once finish. */
export interface UploadEngine {
  store: TusStore;
  locker: Locker;
  /** Commit a complete upload (once, under its lock); the headers naming its file. */
  settleComplete(tenant: string, id: string, log: CoreLog): Promise<Record<string, string>>;
}

export interface ResumableDeps {
  config: Readonly<Config>;
  storage: Storage;
  engine: UploadEngine;
  /** Stops lock waits at shutdown. */
  shutdownSignal?: AbortSignal | undefined;
}

export interface Call {
  tenant: string;
  log: CoreLog;
  headers: Headers;
  version: InteropVersion;
}

export interface BodyCall extends Call {
  /** The request body, unread. */
  body: AsyncIterator<Uint8Array>;
  /** Whether the whole body arrived (false after a drop or a takeover). */
  bodyComplete(): boolean;
  /** Send a 104 (Upload Resumption Supported) interim answer, if the transport can. */
  interim(headers: Record<string, string>): void;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  /** A newer request took the upload over: end this one without an answer. */
  terminate?: boolean;
}

export interface ResumableUploads {
  create(call: BodyCall): Promise<Answer>;
  append(call: BodyCall, id: string): Promise<Answer>;
  offset(call: Call, id: string): Promise<Answer>;
  cancel(call: Call, id: string): Promise<Answer>;
  options(v: InteropVersion): Answer;
}

export function createResumableUploads(deps: ResumableDeps): ResumableUploads {
  const { config, storage, engine } = deps;
  const { store, locker } = engine;
  const prefix = config.keyPrefix;
  const maxSize = config.limits.fileBytes;
  const stop = deps.shutdownSignal ?? new AbortController().signal;
  const location = (id: string) => `${UPLOADS_PATH}/${id}`;

  const limits = (v: InteropVersion, upload?: Upload) => {
    const created = upload?.creation_date ? Date.parse(upload.creation_date) : Date.now();
    const ageS = config.tus.expiryMs > 0 ? (created + config.tus.expiryMs - Date.now()) / 1000 : undefined;
    return uploadLimitHeader(v, { maxSize, maxAgeS: ageS });
  };

  const committed = async (ref: UploadRef) => (await storage.head(fileKeys(prefix, ref.tenant, ref.id).manifest)) !== null;

  const getUpload = async (key: string): Promise<Upload> => {
    try {
      return await store.getUpload(key);
    } catch (err) {
      throw storeError(err);
    }
  };

  /** Take the upload's lock; a request holding it now is asked to let go (the draft's takeover). */
  const lockUpload = async (key: string, release: Release | undefined): Promise<Lock> => {
    const lock = locker.newLock(key);
    try {
      await lock.lock(stop, release ? release.request : async () => {});
    } catch (err) {
      throw storeError(err);
    }
    return lock;
  };

  /** The answer for a committed upload: its file, as PUT /v1/files would have answered. */
  const completedAnswer = async (call: Call, ref: UploadRef, status: number, size: number, extra: Record<string, string>): Promise<Answer> => {
    const named = await engine.settleComplete(ref.tenant, ref.id, call.log);
    const manifest = await readManifest(storage, prefix, ref.tenant, ref.id);
    return {
      status,
      headers: { ...extra, ...named, ...completeHeader(call.version, true), 'upload-offset': String(size) },
      body: { files: [fileView(manifest)] },
    };
  };

  /**
   * Write the body at `upload.offset` under the lock, fixing the length first
   * when this request declares or implies it. Returns the new offset and
   * whether the upload is now complete. Refusals of the bytes (type, size,
   * length) remove the upload: they can never become a file.
   */
  const writeBody = async (call: BodyCall, ref: UploadRef, upload: Upload, complete: boolean, release: Release) => {
    const key = uploadKey(prefix, ref);
    const offset = upload.offset;
    const declared = uploadLength(call.headers);
    const cl = contentLength(call.headers);
    const implied = complete && cl !== undefined ? offset + cl : undefined;
    const lengths = [upload.size, declared, implied].filter((n): n is number => n !== undefined);
    if (lengths.some((n) => n !== lengths[0])) {
      throw new SluiceError('UPLOAD_LENGTH_INCONSISTENT', { details: { length: upload.size ?? declared } });
    }
    const size = lengths[0];
    if (size !== undefined && size > maxSize) {
      throw new SluiceError('FILE_TOO_LARGE', { details: { limitBytes: maxSize }, headers: limits(call.version, upload) });
    }
    if (size !== undefined && (size < offset || (cl !== undefined && offset + cl > size))) {
      throw new SluiceError('UPLOAD_LENGTH_INCONSISTENT', { details: { length: size } });
    }
    if (upload.size === undefined && size !== undefined) await store.declareUploadLength(key, size);

    let reached = offset;
    if (!release.released && (cl === undefined || cl > 0)) {
      const body = boundedBody(
        call.body,
        release,
        (size ?? maxSize) - offset,
        size !== undefined ? 'UPLOAD_LENGTH_INCONSISTENT' : 'FILE_TOO_LARGE',
      );
      try {
        // A known body length lets the S3 store stream whole parts as they arrive (tus/s3-part-store.ts).
        reached = await bodyLength.run(cl, () => store.write(Readable.from(body, { objectMode: false }), key, offset));
      } catch (err) {
        const e = storeError(err);
        // The store already removed a type refusal; a size or length overrun is removed here.
        if (isSluiceError(e) && (e.code === 'FILE_TOO_LARGE' || e.code === 'UPLOAD_LENGTH_INCONSISTENT')) {
          await removeUpload({ config, storage, log: call.log, store }, ref);
        }
        throw e;
      }
    }
    const whole = call.bodyComplete() && !release.released;
    if (!complete || !whole) return { reached, done: false };
    if (size === undefined) {
      // A final body of unknown length: its end fixes the length; the empty
      // write lets the S3 store complete its multipart upload with the tail.
      await store.declareUploadLength(key, reached);
      await store.write(Readable.from([]), key, reached);
    } else if (reached !== size) {
      throw new SluiceError('UPLOAD_LENGTH_INCONSISTENT', { message: `The upload completed at ${reached} bytes, short of its length ${size}` });
    }
    return { reached, done: true };
  };

  return {
    async create(call) {
      const complete = requestComplete(call.headers, call.version);
      if (complete === undefined) throw new SluiceError('INVALID_INPUT', { message: 'Upload creation needs Upload-Complete (or Upload-Incomplete in interop version 3)' });
      const ref: UploadRef = { tenant: call.tenant, id: newFileId() };
      const key = uploadKey(prefix, ref);
      const declared = uploadLength(call.headers);
      const cl = contentLength(call.headers);
      const size = declared ?? (complete && cl !== undefined ? cl : undefined);
      if (size !== undefined && size > maxSize) {
        throw new SluiceError('FILE_TOO_LARGE', { details: { limitBytes: maxSize }, headers: limits(call.version) });
      }
      if (declared !== undefined && complete && cl !== undefined && declared !== cl) throw new SluiceError('UPLOAD_LENGTH_INCONSISTENT');
      // The sweep's index, written before the store creates anything (as for tus).
      const marker = { tenant: ref.tenant, id: ref.id, size: size ?? null, createdAt: new Date().toISOString(), protocol: 'ietf-draft' };
      await storage.put(pendingKey(prefix, ref), bytesOf(Buffer.from(JSON.stringify(marker))), { contentType: 'application/json' });
      const upload = new Upload({ id: key, offset: 0, size, metadata: metadataOf(call.headers), creation_date: new Date().toISOString() });
      try {
        await store.create(upload);
      } catch (err) {
        throw storeError(err);
      }
      const resource = { location: location(ref.id), ...limits(call.version, upload) };
      call.interim(resource);
      const release = releasable();
      const lock = await lockUpload(key, release);
      let result;
      try {
        // What the size was fixed at is the store's now: the write checks against it.
        result = await writeBody(call, ref, upload, complete, release);
      } finally {
        await lock.unlock();
      }
      if (release.released) return { status: 201, headers: resource, terminate: true };
      if (result.done) return completedAnswer(call, ref, 201, result.reached, resource);
      return { status: 201, headers: { ...resource, ...completeHeader(call.version, false), 'upload-offset': String(result.reached) } };
    },

    async append(call, id) {
      if (!isAppendContentType(call.version, firstOf(call.headers['content-type']))) {
        throw new SluiceError('UNSUPPORTED_CONTENT_TYPE', { message: `An append must be ${PARTIAL_UPLOAD}` });
      }
      const provided = uploadOffset(call.headers);
      if (provided === undefined) throw new SluiceError('INVALID_INPUT', { message: 'An append needs Upload-Offset (a non-negative integer)' });
      const complete = requestComplete(call.headers, call.version);
      if (complete === undefined) throw new SluiceError('INVALID_INPUT', { message: 'An append needs Upload-Complete (or Upload-Incomplete in interop version 3)' });
      const ref = refOf(call.tenant, id);
      const key = uploadKey(prefix, ref);
      const cl = contentLength(call.headers);
      const release = releasable();
      const lock = await lockUpload(key, release);
      let result;
      try {
        const upload = await getUpload(key);
        if (upload.size !== undefined && upload.offset === upload.size) {
          // Every byte is here: a committed upload takes no more; one whose finish failed is finished by an empty final append.
          if (cl !== undefined && cl > 0) throw new SluiceError('UPLOAD_LENGTH_INCONSISTENT', { headers: completeHeader(call.version, true) });
          if ((await committed(ref)) || !complete) {
            throw new SluiceError('UPLOAD_ALREADY_COMPLETE', {
              message: 'The upload is complete; it takes no more appends',
              headers: { ...completeHeader(call.version, true), 'upload-offset': String(upload.offset) } });
          }
          result = { reached: upload.offset, done: true };
        } else {
          if (provided !== upload.offset) {
            throw new SluiceError('UPLOAD_OFFSET_MISMATCH', {
              headers: { 'upload-offset': String(upload.offset) },
              details: { 'expected-offset': upload.offset, 'provided-offset': provided },
            });
          }
          result = await writeBody(call, ref, upload, complete, release);
        }
      } finally {
        await lock.unlock();
      }
      if (release.released) return { status: 204, headers: {}, terminate: true };
      if (result.done) return completedAnswer(call, ref, 200, result.reached, {});
      return { status: 204, headers: { ...completeHeader(call.version, false), 'upload-offset': String(result.reached) } };
    },

    async offset(call, id) {
      const ref = refOf(call.tenant, id);
      const key = uploadKey(prefix, ref);
      // Under the lock: an append still open (its client gone) is ended first, so the offset is current.
      const lock = await lockUpload(key, undefined);
      let upload: Upload;
      try {
        upload = await getUpload(key);
      } finally {
        await lock.unlock();
      }
      const complete = upload.size !== undefined && upload.offset === upload.size;
      const headers: Record<string, string> = {
        ...completeHeader(call.version, complete),
        'upload-offset': String(upload.offset),
        ...(upload.size !== undefined ? { 'upload-length': String(upload.size) } : {}),
        ...(complete ? {} : limits(call.version, upload)),
        'cache-control': 'no-store',
      };
      // Complete: name the file, committing it now if its finish failed before.
      if (complete) Object.assign(headers, await engine.settleComplete(ref.tenant, ref.id, call.log));
      return { status: 204, headers };
    },

    async cancel(call, id) {
      const ref = refOf(call.tenant, id);
      const key = uploadKey(prefix, ref);
      const lock = await lockUpload(key, undefined);
      try {
        await getUpload(key);
        if (await committed(ref)) throw new SluiceError('UPLOAD_ALREADY_COMPLETE', { headers: completeHeader(call.version, true) });
        try {
          await store.remove(key);
        } catch (err) {
          throw storeError(err);
        }
      } finally {
        await lock.unlock();
      }
      return { status: 204, headers: {} };
    },

    options(v) {
      return {
        status: 204,
        headers: { 'accept-patch': PARTIAL_UPLOAD, ...uploadLimitHeader(v, { maxSize, maxAgeS: config.tus.expiryMs > 0 ? config.tus.expiryMs / 1000 : undefined }) },
      };
    },
  };
}

/** The file's name (Content-Disposition filename, RFC 6266) and declared type (Content-Type of the creation). */
function metadataOf(headers: Headers): Record<string, string> {
  const meta: Record<string, string> = {};
  const disposition = firstOf(headers['content-disposition']);
  if (disposition) {
    try {
      const name = parseDisposition(disposition).parameters.filename;
      if (name) meta.filename = name;
    } catch {
      // A malformed disposition names nothing; the file gets the default name.
    }
  }
  const type = firstOf(headers['content-type'])?.split(';')[0]?.trim().toLowerCase();
  if (type && type !== PARTIAL_UPLOAD) meta.filetype = type;
  return meta;
}

/** The upload a URL names; one that cannot be ours is simply not found. */
function refOf(tenant: string, id: string): UploadRef {
  if (!isFileId(id)) throw new SluiceError('UPLOAD_NOT_FOUND');
  return { tenant, id };
}

function firstOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The tus stores', lockers' and S3's errors in our codes (tus/protocol-errors.ts for tus's own). */
function storeError(err: unknown): unknown {
  if (isSluiceError(err)) return err;
  if (err === ERRORS.FILE_NO_LONGER_EXISTS) return new SluiceError('UPLOAD_NOT_FOUND');
  if (err === ERRORS.ABORTED) return new SluiceError('SHUTTING_DOWN');
  if (err instanceof Error && '$metadata' in err) return translate(err);
  return fromTusError(err) ?? err;
}
