// Streams a body into S3 in fixed-size parts held in reused buffers.
//
// Why not lib-storage's Upload: its chunker concatenates incoming chunks and
// slices parts off the copy, so each part can pin the previous copy until the
// next one is made (aws-sdk-js-v3#8286, worse on Node 24). Measured here with
// 8 MiB × 4: lib-storage peaked ~115 MiB above idle for one upload; this
// writer stays at partSize × (queueSize + 1) (see bench/upload.ts, which runs
// both). The ordering lib-storage gets right is kept: on failure, every
// in-flight part settles before AbortMultipartUpload, or parts are stranded.
//
// Part sizes come from a plan (s3-parts.ts) so that a file up to the size
// limit fits the store's part count: every part is the configured size unless
// the length or the limit asks for more.
//
// Memory bound per upload: plan.largest × (queueSize + 1) — one part filling
// while up to queueSize upload. Parts of the configured size come from (and
// return to) a small process-wide free list; a grown part's buffers are
// allocated for that upload and reused by its later parts, at most
// queueSize + 1 of them, and dropped when it ends.

import {
  AbortMultipartUploadCommand, ChecksumAlgorithm, CompleteMultipartUploadCommand, CreateMultipartUploadCommand,
  PutObjectCommand, UploadPartCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3';
import type { PartPlan } from './s3-parts.ts';

export interface PartUploadParams {
  Bucket: string;
  Key: string;
  ContentType: string;
  Metadata?: Record<string, string> | undefined;
}

export interface PartUploadOptions {
  plan: PartPlan;
  queueSize: number;
  signal?: AbortSignal | undefined;
  /** Called when an abort after a failure itself fails (the reaper will sweep the upload). */
  onAbortError?: (err: unknown) => void;
  /** Sent with the commit (PutObject or CompleteMultipartUpload): the store checks it when the object would become visible. */
  condition?: { IfNoneMatch: '*' } | { IfMatch: string } | undefined;
}

/** A free list of part-sized buffers, bounded so idle memory is returned to the allocator. */
export class PartBufferPool {
  readonly partSize: number;
  readonly maxIdle: number;
  #free: Buffer[] = [];

  constructor(partSize: number, maxIdle: number) {
    this.partSize = partSize;
    this.maxIdle = maxIdle;
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.partSize);
  }

  give(buf: Buffer): void {
    if (buf.length === this.partSize && this.#free.length < this.maxIdle) this.#free.push(buf);
  }
}

export async function uploadInParts(
  client: S3Client,
  params: PartUploadParams,
  body: AsyncIterable<Uint8Array>,
  pool: PartBufferPool,
  opts: PartUploadOptions,
): Promise<{ size: number; etag: string | undefined }> {
  const { plan, queueSize, signal } = opts;
  const condition = opts.condition ?? {};
  const checksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  let uploadId: string | undefined;
  let nextPart = 1;
  let failure: unknown;
  const done: CompletedPart[] = [];
  const inflight = new Set<Promise<void>>();
  const held = new Set<Buffer>();
  // Buffers of a grown part size, kept for this upload's next parts of that size.
  const spare: Buffer[] = [];
  const take = (size: number): Buffer => {
    const buf = size === pool.partSize ? pool.take() : (spare.pop() ?? Buffer.allocUnsafeSlow(size));
    held.add(buf);
    return buf;
  };
  const give = (buf: Buffer): void => {
    held.delete(buf);
    if (buf.length === pool.partSize) pool.give(buf);
    else if (spare.length <= queueSize) spare.push(buf);
  };
  /** The part being filled (sent parts are numbered in sendPart). */
  let filling = 1;
  let capacity = plan.sizeOf(filling);
  // Until a body outgrows its first part, its chunks are only kept, not copied: a small file
  // is sent as one exactly-sized PutObject body and never takes (or allocates) a part buffer.
  // 2,000 concurrent 64 KiB uploads each took an 8 MiB buffer before (docs/performance.md).
  let small: Uint8Array[] | undefined = [];
  let buf: Buffer = Buffer.alloc(0);
  let filled = 0;
  let size = 0;

  const sendPart = async (part: Buffer, length: number) => {
    if (uploadId === undefined) {
      // Not under the signal: aborted in flight, the store may create the upload anyway and
      // we would never learn its id to abort it (bench:faults left one pending this way).
      signal?.throwIfAborted();
      const created = await client.send(
        new CreateMultipartUploadCommand({
          ...params,
          ...(checksums ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}),
        }),
      );
      uploadId = created.UploadId;
    }
    const PartNumber = nextPart++;
    const p = client
      .send(
        new UploadPartCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId, PartNumber, Body: part.subarray(0, length), ContentLength: length }),
        { abortSignal: signal },
      )
      .then((r) => {
        done.push({ PartNumber, ETag: r.ETag, ...(r.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}) });
      })
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => {
        inflight.delete(p);
        give(part);
      });
    inflight.add(p);
    while (inflight.size >= queueSize) await Promise.race(inflight);
    if (failure) throw failure;
  };

  try {
    for await (const chunk of body) {
      if (small) {
        if (size + chunk.byteLength <= capacity) {
          small.push(chunk);
          size += chunk.byteLength;
          continue;
        }
        buf = take(capacity);
        for (const c of small) {
          buf.set(c, filled);
          filled += c.byteLength;
        }
        small = undefined;
      }
      let off = 0;
      while (off < chunk.byteLength) {
        // A full buffer is sent only once more data exists, so an object of
        // exactly one part size still goes up as a single PutObject.
        if (filled === capacity) {
          if (filling === plan.maxParts) throw new Error(`the body needs more than the store's ${plan.maxParts} parts`);
          await sendPart(buf, filled);
          filling++;
          capacity = plan.sizeOf(filling);
          buf = take(capacity);
          filled = 0;
        }
        const n = Math.min(chunk.byteLength - off, capacity - filled);
        buf.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        size += n;
      }
    }
    // The commit (PutObject, CompleteMultipartUpload) is one request sent without the
    // caller's signal: aborted in flight, the store may still commit it after we gave
    // up, leaving an object the caller believes is gone. Check the signal before instead.
    if (small) {
      signal?.throwIfAborted();
      const Body = small.length === 1 ? small[0]! : Buffer.concat(small, size);
      small = undefined;
      const put = await client.send(new PutObjectCommand({ ...params, ...condition, Body, ContentLength: size }));
      return { size, etag: put.ETag };
    }
    if (uploadId === undefined && inflight.size === 0) {
      signal?.throwIfAborted();
      const put = await client.send(new PutObjectCommand({ ...params, ...condition, Body: buf.subarray(0, filled), ContentLength: filled }));
      return { size, etag: put.ETag };
    }
    if (filled > 0) await sendPart(buf, filled);
    await Promise.all(inflight);
    if (failure) throw failure;
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    signal?.throwIfAborted();
    const completed = await client.send(
      new CompleteMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId, MultipartUpload: { Parts: done }, ...condition }),
    );
    uploadId = undefined; // committed: nothing to abort
    return { size, etag: completed.ETag };
  } catch (err) {
    // Every part must settle before the abort, or a late part could re-create storage S3 bills for.
    await Promise.allSettled([...inflight]);
    if (uploadId !== undefined) {
      // Not under the caller's signal: the abort must go out even when that signal is what failed us.
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId }))
        .catch((abortErr: unknown) => opts.onAbortError?.(abortErr));
    }
    throw err;
  } finally {
    for (const b of held) give(b);
  }
}
