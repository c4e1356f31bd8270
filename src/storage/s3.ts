// S3 backend (AWS or any S3-compatible store). A put streams the body in
// fixed-size parts (s3-upload.ts): one PutObject below the part size, a
// multipart upload above it. The object appears only on
// CompleteMultipartUpload, so an error in the body stream leaves nothing: every
// in-flight part settles, then AbortMultipartUpload is sent.
// SLUICE_S3_UPLOADER=lib-storage switches to lib-storage's Upload, kept for
// comparison (bench/upload.ts measures both) and as a fallback.
//
// Part sizes follow the provider's rules (s3-parts.ts): a file up to the size
// limit always fits the part count. Memory per put: largest part × (queueSize
// + 1) with the part writer, where the largest part is the configured part size
// unless the size limit needs more (s3-parts.ts bounds it); about
// part size × (queueSize + 2) plus retained copies with lib-storage, which
// cannot grow parts and so gets the fixed plan for the size limit.
//
// SDK errors are translated here into SluiceError codes; nothing above this
// file knows about the SDK.

import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListMultipartUploadsCommand, ListObjectsV2Command, S3Client, type S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { BuildMiddleware, MetadataBearer } from '@smithy/types';
import type { S3Config } from '../config.ts';
import { PartBufferPool, uploadInParts } from './s3-upload.ts';
import { planParts, type PartPlan, type PartRules } from './s3-parts.ts';
import { errName, translate } from './s3-errors.ts';
import { SluiceError, isSluiceError } from '../errors.ts';
import type {
  ConditionalWrites, GetOptions, GetResult, ListOptions, ListResult, ObjectInfo, PutOptions, PutResult, RequestObserver, StaleUploadSweeper,
  SweepStaleOptions,
  Storage, WriteCondition,
} from './storage.ts';

export function makeS3Client(cfg: S3Config): S3Client {
  const checksum = cfg.checksum === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  const client = new S3Client({
    // Resolve each command's middleware stack once, not on every send (sends without options;
    // see docs/performance.md). Middleware must therefore be added before the first request.
    cacheMiddleware: true,
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    forcePathStyle: cfg.forcePathStyle,
    ...(cfg.accessKeyId && cfg.secretAccessKey
      ? { credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } }
      : {}),
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    maxAttempts: 3,
    requestHandler: {
      // Fail fast when the store is down (→ 503), but let slow part uploads finish.
      connectionTimeout: 5_000,
      requestTimeout: 120_000,
      httpAgent: new Agent({ keepAlive: true, maxSockets: 256 }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
    },
  });
  client.middlewareStack.add(unsignedPayloadWithChecksum, { step: 'build', priority: 'low', name: 'sluiceUnsignedPayloadWithChecksum', override: true });
  return client;
}

/**
 * A buffered body that carries an x-amz-checksum-* header is sent with
 * `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the store verifies the bytes against
 * the checksum, so hashing every byte again with SHA-256 on the event loop (the
 * signer's default for buffers) buys nothing; that hash was a fifth of the main
 * thread's time per MiB of upload (docs/performance.md). The SDK does the same
 * for streamed bodies (STREAMING-UNSIGNED-PAYLOAD-TRAILER). Without a checksum
 * (SLUICE_S3_CHECKSUM=when_required) the payload stays signed.
 */
const unsignedPayloadWithChecksum: BuildMiddleware<object, MetadataBearer> = (next) => (args) => {
  const req = args.request as { headers?: Record<string, string>; body?: unknown };
  const headers = req.headers;
  if (headers && req.body instanceof Uint8Array && headers['x-amz-content-sha256'] === undefined) {
    for (const name in headers) {
      if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-type') {
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        break;
      }
    }
  }
  return next(args);
};

export class S3Storage implements Storage, StaleUploadSweeper, ConditionalWrites, RequestObserver {
  readonly kind = 's3';
  readonly client: S3Client;
  readonly bucket: string;
  readonly partSize: number;
  readonly queueSize: number;
  readonly bufferedBytesPerPut: number;
  readonly uploader: S3Config['uploader'];
  readonly rules: PartRules;
  readonly maxObjectBytes: number;
  /** The plan of a body of unknown length. */
  readonly streamPlan: PartPlan;
  readonly #pool: PartBufferPool;

  constructor(cfg: S3Config, client: S3Client = makeS3Client(cfg)) {
    this.client = client;
    this.bucket = cfg.bucket;
    this.partSize = cfg.partSize;
    this.queueSize = cfg.queueSize;
    this.uploader = cfg.uploader;
    // lib-storage cannot change the part size mid-upload: it gets the equal-parts plan.
    this.rules = { maxParts: cfg.maxParts, maxPartSize: cfg.maxPartSize, equalParts: cfg.equalParts || cfg.uploader === 'lib-storage' };
    this.maxObjectBytes = cfg.maxObjectBytes;
    this.streamPlan = this.planFor(undefined);
    // A declared length never plans a part larger than the unknown-length plan's largest (s3-parts.ts).
    this.bufferedBytesPerPut = this.streamPlan.largest * (cfg.queueSize + (cfg.uploader === 'parts' ? 1 : 2));
    // Keep enough idle buffers for one upload's worth of reuse; the rest go back to the allocator.
    this.#pool = new PartBufferPool(cfg.partSize, cfg.queueSize + 1);
  }

  observeRequests(onRequest: (operation: string) => void): void {
    // One middleware on the client, added once: per-command middleware would be rebuilt on every send.
    // The deserialize step runs inside the retry loop, so every attempt counts. Called at start-up,
    // before any request: with cacheMiddleware, stacks resolved earlier would not see it.
    this.client.middlewareStack.add(
      (next, context) => (args) => {
        onRequest(context.commandName ?? 'unknown');
        return next(args);
      },
      { step: 'deserialize', name: 'sluiceRequestCounter', override: true },
    );
  }

  planFor(declaredSize: number | undefined): PartPlan {
    return planParts({ partSize: this.partSize, rules: this.rules, maxFileBytes: this.maxObjectBytes, declaredSize });
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> {
    // Remember the body's own error: it (a coded limit, type or checksum error) must win over the SDK's.
    let bodyError: unknown;
    const guarded = async function* (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) {
          opts.signal?.throwIfAborted();
          yield chunk;
        }
        opts.signal?.throwIfAborted();
      } catch (err) {
        bodyError = err;
        throw err;
      }
    };
    const params = { Bucket: this.bucket, Key: key, ContentType: opts.contentType, Metadata: opts.metadata };
    try {
      // A declared length larger than the limit is the caller's to refuse; plan for the stream then.
      const plan = opts.sizeHint !== undefined && opts.sizeHint <= this.maxObjectBytes ? this.planFor(opts.sizeHint) : this.streamPlan;
      if (this.uploader === 'lib-storage') return await this.#putWithLibStorage(params, guarded(), plan.largest, opts.signal);
      const { size } = await uploadInParts(this.client, params, guarded(), this.#pool, {
        plan,
        queueSize: this.queueSize,
        signal: opts.signal,
      });
      return { size };
    } catch (err) {
      if (bodyError !== undefined) throw bodyError;
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw translate(err);
    }
  }

  // Always the part writer, whatever the uploader setting: it sends the condition with the commit.
  async putIf(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions & { condition: WriteCondition }): Promise<PutResult & { etag: string }> {
    const cond = opts.condition;
    const condition = 'ifAbsent' in cond ? { IfNoneMatch: '*' as const } : { IfMatch: cond.ifMatch };
    let bodyError: unknown;
    const guarded = async function* (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) yield chunk;
      } catch (err) {
        bodyError = err;
        throw err;
      }
    };
    try {
      const res = await uploadInParts(this.client, { Bucket: this.bucket, Key: key, ContentType: opts.contentType, Metadata: opts.metadata }, guarded(), this.#pool, {
        plan: opts.sizeHint !== undefined && opts.sizeHint <= this.maxObjectBytes ? this.planFor(opts.sizeHint) : this.streamPlan,
        queueSize: this.queueSize,
        signal: opts.signal,
        condition,
      });
      if (!res.etag) throw new SluiceError('STORAGE_UNAVAILABLE', { message: `the store returned no ETag for ${key}` });
      return { size: res.size, etag: res.etag };
    } catch (err) {
      if (bodyError !== undefined) throw bodyError;
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw conditionFailed(err) ? new SluiceError('WRITE_CONFLICT', { cause: err }) : translate(err);
    }
  }

  async #putWithLibStorage(
    params: { Bucket: string; Key: string; ContentType: string; Metadata: Record<string, string> | undefined },
    body: AsyncGenerator<Uint8Array>,
    partSize: number,
    signal: AbortSignal | undefined,
  ): Promise<PutResult> {
    let size = 0;
    const counted = async function* () {
      for await (const chunk of body) {
        size += chunk.byteLength;
        yield chunk;
      }
    };
    const stream = Readable.from(counted(), { objectMode: false });
    // Abort by failing the body: Upload.abort() rejects at once and aborts in the background.
    const onAbort = () => stream.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await new Upload({
        client: this.client,
        params: { ...params, Body: stream },
        partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      }).done();
      return { size };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stream.destroy();
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const range = opts.range ? `bytes=${opts.range.start}-${opts.range.end}` : undefined;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }), {
        abortSignal: opts.signal,
      });
      const total = res.ContentRange ? Number(res.ContentRange.split('/')[1]) : Number(res.ContentLength ?? 0);
      return { body: res.Body as Readable, size: total, ...(res.ETag ? { etag: res.ETag } : {}) };
    } catch (err) {
      if (errName(err) === 'InvalidRange') {
        const size = (await this.head(key))?.size;
        throw new SluiceError('RANGE_NOT_SATISFIABLE', size === undefined ? {} : { headers: { 'content-range': `bytes */${size}` } });
      }
      throw translate(err);
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: Number(res.ContentLength ?? 0),
        lastModified: res.LastModified ?? new Date(0),
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.ETag ? { etag: res.ETag } : {}),
      };
    } catch (err) {
      const t = translate(err);
      if (isSluiceError(t) && t.code === 'FILE_NOT_FOUND') return null;
      throw t;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const t = translate(err);
      if (isSluiceError(t) && t.code === 'FILE_NOT_FOUND') return;
      throw t;
    }
  }

  async list(opts: ListOptions): Promise<ListResult> {
    try {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: opts.prefix,
          Delimiter: opts.delimiter,
          StartAfter: opts.startAfter,
          MaxKeys: Math.min(opts.limit ?? 1000, 1000),
        }),
      );
      return {
        objects: (res.Contents ?? []).map((o) => ({ key: o.Key!, size: Number(o.Size ?? 0), lastModified: o.LastModified ?? new Date(0) })),
        prefixes: (res.CommonPrefixes ?? []).map((p) => p.Prefix!).filter(Boolean),
        truncated: res.IsTruncated === true,
      };
    } catch (err) {
      throw translate(err);
    }
  }

  async ready(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw new SluiceError('STORAGE_UNAVAILABLE', { cause: err });
    }
  }

  async sweepStale(opts: SweepStaleOptions): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        // A whole key is sent as the prefix: MinIO lists nothing for a prefix that is not a
        // whole key, so a folder prefix is applied here instead (pending uploads are few in a
        // healthy bucket; the tus sweep asks per key, never for all of them).
        const res = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker, ...(opts.key ? { Prefix: opts.key } : {}) }),
        );
        for (const u of res.Uploads ?? []) {
          if (!u.Initiated || u.Initiated >= opts.olderThan || !u.Key?.startsWith(opts.prefix) || !u.UploadId) continue;
          if (opts.key !== undefined && u.Key !== opts.key) continue;
          if (opts.keep && (await opts.keep(u.Key))) continue;
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
          aborted++;
        }
        if (!res.IsTruncated) return aborted;
        keyMarker = res.NextKeyMarker;
        uploadIdMarker = res.NextUploadIdMarker;
      }
    } catch (err) {
      throw translate(err);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * A conditional request the store refused: 412 (the condition failed), 409
 * (AWS: a concurrent conditional write won), 404 (If-Match on a key that is gone).
 */
function conditionFailed(err: unknown): boolean {
  const status = (err as Partial<S3ServiceException> | null)?.$metadata?.httpStatusCode;
  const name = errName(err);
  if (name === 'NoSuchBucket') return false;
  return status === 412 || status === 409 || status === 404 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || name === 'NoSuchKey';
}

export { translate };
