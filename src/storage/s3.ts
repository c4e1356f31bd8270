// S3 backend (AWS or any S3-compatible store). Puts go through lib-storage's
// Upload: one PutObject below the part size, a multipart upload above it. The
// object appears only on CompleteMultipartUpload, so an error in the body
// stream leaves nothing: lib-storage waits for every in-flight part, then sends
// AbortMultipartUpload ("to avoid stranding parts"). To keep that ordering we
// abort by failing the body, not with Upload.abort(), which rejects at once and
// aborts in the background.
//
// Memory per put: lib-storage holds up to partSize while filling a part, one
// concatenated copy, and queueSize parts in flight: about partSize × (queueSize + 2).
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
import type { S3Config } from '../config.ts';
import { SluiceError, isSluiceError } from '../errors.ts';
import type {
  GetOptions, GetResult, ListOptions, ListResult, ObjectInfo, PutOptions, PutResult, StaleUploadSweeper, Storage,
} from './storage.ts';

export function makeS3Client(cfg: S3Config): S3Client {
  const checksum = cfg.checksum === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  return new S3Client({
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
}

export class S3Storage implements Storage, StaleUploadSweeper {
  readonly kind = 's3';
  readonly client: S3Client;
  readonly bucket: string;
  readonly partSize: number;
  readonly queueSize: number;
  readonly bufferedBytesPerPut: number;

  constructor(cfg: S3Config, client: S3Client = makeS3Client(cfg)) {
    this.client = client;
    this.bucket = cfg.bucket;
    this.partSize = cfg.partSize;
    this.queueSize = cfg.queueSize;
    this.bufferedBytesPerPut = cfg.partSize * (cfg.queueSize + 2);
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> {
    let bodyError: unknown;
    let size = 0;
    const signal = opts.signal;
    const guarded = async function* (): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) {
          signal?.throwIfAborted();
          size += chunk.byteLength;
          yield chunk;
        }
        signal?.throwIfAborted();
      } catch (err) {
        bodyError = err;
        throw err;
      }
    };
    const stream = Readable.from(guarded(), { objectMode: false });
    const onAbort = () => stream.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: stream, ContentType: opts.contentType, Metadata: opts.metadata },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { size };
    } catch (err) {
      if (bodyError !== undefined) throw bodyError;
      if (signal?.aborted) throw signal.reason;
      throw translate(err);
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
      return { body: res.Body as Readable, size: total };
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

  async sweepStale(opts: { prefix: string; olderThan: Date }): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        // The prefix is applied here, not sent: MinIO lists nothing for a prefix that is not a
        // whole key, and pending uploads are few in any healthy bucket.
        const res = await this.client.send(
          new ListMultipartUploadsCommand({ Bucket: this.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        for (const u of res.Uploads ?? []) {
          if (u.Initiated && u.Initiated < opts.olderThan && u.Key?.startsWith(opts.prefix) && u.UploadId) {
            await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }));
            aborted++;
          }
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

function errName(err: unknown): string | undefined {
  return (err as { name?: string; Code?: string } | null)?.name;
}

/** SDK and network errors → coded errors. Anything not "not found" means storage is unusable for now. */
export function translate(err: unknown): unknown {
  if (isSluiceError(err)) return err;
  const name = errName(err);
  const status = (err as Partial<S3ServiceException> | null)?.$metadata?.httpStatusCode;
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new SluiceError('FILE_NOT_FOUND', { cause: err });
  }
  return new SluiceError('STORAGE_UNAVAILABLE', { cause: err });
}
