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
// Memory bound per upload: partSize × (queueSize + 1) — one part filling while
// up to queueSize upload. Buffers return to a small process-wide free list.

import {
  AbortMultipartUploadCommand, ChecksumAlgorithm, CompleteMultipartUploadCommand, CreateMultipartUploadCommand,
  PutObjectCommand, UploadPartCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3';

export interface PartUploadParams {
  Bucket: string;
  Key: string;
  ContentType: string;
  Metadata?: Record<string, string> | undefined;
}

export interface PartUploadOptions {
  partSize: number;
  queueSize: number;
  signal?: AbortSignal | undefined;
  /** Called when an abort after a failure itself fails (the reaper will sweep the upload). */
  onAbortError?: (err: unknown) => void;
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
): Promise<{ size: number }> {
  const { partSize, queueSize, signal } = opts;
  const checksums = (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  let uploadId: string | undefined;
  let nextPart = 1;
  let failure: unknown;
  const done: CompletedPart[] = [];
  const inflight = new Set<Promise<void>>();
  const held = new Set<Buffer>();
  // Until a body outgrows one part, its chunks are only kept, not copied: a small file is sent
  // as one exactly-sized PutObject body, and never takes (or allocates) a part-sized buffer.
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
        held.delete(part);
        pool.give(part);
      });
    inflight.add(p);
    while (inflight.size >= queueSize) await Promise.race(inflight);
    if (failure) throw failure;
  };

  try {
    for await (const chunk of body) {
      if (small) {
        if (size + chunk.byteLength <= partSize) {
          small.push(chunk);
          size += chunk.byteLength;
          continue;
        }
        buf = pool.take();
        held.add(buf);
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
        if (filled === partSize) {
          await sendPart(buf, filled);
          buf = pool.take();
          held.add(buf);
          filled = 0;
        }
        const n = Math.min(chunk.byteLength - off, partSize - filled);
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
      await client.send(new PutObjectCommand({ ...params, Body, ContentLength: size }));
      return { size };
    }
    if (uploadId === undefined && inflight.size === 0) {
      signal?.throwIfAborted();
      await client.send(new PutObjectCommand({ ...params, Body: buf.subarray(0, filled), ContentLength: filled }));
      return { size };
    }
    if (filled > 0) await sendPart(buf, filled);
    await Promise.all(inflight);
    if (failure) throw failure;
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    signal?.throwIfAborted();
    await client.send(
      new CompleteMultipartUploadCommand({ Bucket: params.Bucket, Key: params.Key, UploadId: uploadId, MultipartUpload: { Parts: done } }),
    );
    uploadId = undefined; // committed: nothing to abort
    return { size };
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
    for (const b of held) pool.give(b);
  }
}
