// @tus/s3-store with sluice's write path: a PATCH's bytes stream straight into
// S3 parts instead of being spooled to disk and sent only once the PATCH (or a
// whole part of it) has arrived, and the upload's parts are remembered while
// this instance holds the upload's lock instead of being listed from S3 twice
// per PATCH. Everything else (info object, `.part` object, creation, deferred
// length, termination) is the store's own, so both paths read the same state.
//
// Per PATCH with a Content-Length (tus clients send one), for each part the
// PATCH completes: UploadPart with the part's bytes as they arrive (the
// receive from the client and the send to S3 overlap, as tusd's s3store does
// across its parts). The tail of a PATCH that ends inside a part is kept as the
// store's `.part` object, exactly as @tus/s3-store does. The answer to the PATCH
// still waits for its parts: an acknowledged offset is always in S3.
// Keep-what-arrived: each streamed part is also written to a temp file; when
// the client's connection drops mid-part, the part's upload is abandoned and
// what arrived of it becomes the `.part` object.
//
// The parts state is valid only while this instance's lease on the upload's
// lock is unbroken (the same lease object: s3-locker.ts keeps it across the
// client's PATCHes): no other instance can have written in between. A fresh
// lease, a lost one, or no lease at all (a HEAD on another instance) reads S3.
//
// Bounds: one temp file of at most one part per PATCH in progress (disk), a
// small parts list per upload whose lease this instance holds (MAX_STATES).

import { AsyncLocalStorage } from 'node:async_hooks';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { Upload } from '@tus/utils';

/** The byte count of the request body being written (its Content-Length), set around @tus/server's handling of the request. */
export const bodyLength = new AsyncLocalStorage<number | undefined>();

interface Part {
  PartNumber: number;
  ETag: string;
  Size: number;
}

interface PartsState {
  parts: Part[];
  /** Bytes in the `.part` object. */
  incomplete: number;
  /** The lease the state was read under. */
  lease: unknown;
}

type S3StoreOptions = ConstructorParameters<typeof S3Store>[0];

/** Uploads whose parts are remembered at once (a few hundred bytes each plus ~100 per part); the oldest is read from S3 again. */
const MAX_STATES = 10_000;

export class StreamingS3Store extends S3Store {
  readonly #states = new Map<string, PartsState>();
  readonly #leaseOf: (id: string) => unknown;

  constructor(options: S3StoreOptions, leaseOf: (id: string) => unknown) {
    super(options);
    this.#leaseOf = leaseOf;
  }

  #valid(id: string): PartsState | undefined {
    const st = this.#states.get(id);
    if (!st) return undefined;
    const lease = this.#leaseOf(id);
    if (lease !== undefined && st.lease === lease) return st;
    this.#states.delete(id);
    return undefined;
  }

  async #load(id: string): Promise<PartsState> {
    const lease = this.#leaseOf(id);
    const [parts, incomplete] = await Promise.all([this.retrieveParts(id), this.getIncompletePartSize(id)]);
    const st: PartsState = {
      parts: parts.map((p) => ({ PartNumber: p.PartNumber!, ETag: p.ETag!, Size: p.Size ?? 0 })),
      incomplete: incomplete ?? 0,
      lease,
    };
    if (lease !== undefined) {
      // With the process lock a lease never ends: bound the states of uploads abandoned unfinished.
      if (this.#states.size >= MAX_STATES) this.#states.delete(this.#states.keys().next().value!);
      this.#states.set(id, st);
    }
    return st;
  }

  override async getUpload(id: string): Promise<Upload> {
    const st = this.#valid(id);
    if (!st) return super.getUpload(id);
    const { file } = await this.getMetadata(id);
    return new Upload({ ...file, offset: offsetOf(st), size: file.size, storage: file.storage });
  }

  override async remove(id: string): Promise<void> {
    this.#states.delete(id);
    await super.remove(id);
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const length = bodyLength.getStore();
    const metadata = await this.getMetadata(id);
    const size = metadata.file.size;
    if (length === undefined || size === undefined) {
      // No Content-Length (chunked) or a deferred length: the store's own path.
      this.#states.delete(id);
      return super.write(src, id, offset);
    }
    const st = this.#valid(id) ?? (await this.#load(id));
    try {
      const stored = await this.#writeParts(metadata, st, src, offset + length, size);
      if (stored === size) {
        this.#states.delete(id);
        await this.finishMultipartUpload(metadata, st.parts);
        await this.completeMetadata(metadata.file);
        await this.clearCache(id);
      }
      return stored;
    } catch (err) {
      this.#states.delete(id);
      throw err;
    }
  }

  /** Store the body (ending at `end` if it all arrives) into whole parts and a tail; returns the new offset. */
  async #writeParts(metadata: MetadataValue, st: PartsState, src: Readable, end: number, size: number): Promise<number> {
    const id = metadata.file.id;
    const partSize = this.calcOptimalPartSize(size);
    let source: AsyncIterable<Uint8Array> = src;
    if (st.incomplete > 0) {
      // The tail an earlier PATCH left: it starts the next part.
      const tail = await this.downloadIncompletePart(id);
      if (tail) {
        await this.deleteIncompletePart(id);
        st.incomplete = 0;
        source = concat(tail.createReader({ cleanUpOnEnd: true }), src);
      }
    }
    const reader = new ByteReader(source);
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-tus-part-'));
    try {
      let at = partsBytes(st);
      while (at < end) {
        const partLen = Math.min(partSize, size - at);
        const spool = path.join(dir, String(at));
        if (at + partLen <= end) {
          const partNumber = (st.parts.at(-1)?.PartNumber ?? 0) + 1;
          const got = await this.#streamPart(metadata, reader, partNumber, partLen, spool);
          if (got.etag !== undefined) {
            st.parts.push({ PartNumber: partNumber, ETag: got.etag, Size: partLen });
            at += partLen;
            continue;
          }
          // The client's bytes ended inside this part: what arrived is the tail.
          if (got.bytes > 0) await this.uploadIncompletePart(id, createReadStream(spool));
          st.incomplete = got.bytes;
          return at + got.bytes;
        }
        // The body ends inside this part: keep the rest as the tail.
        const bytes = await spoolRest(reader, spool);
        if (bytes > 0) await this.uploadIncompletePart(id, createReadStream(spool));
        st.incomplete = bytes;
        return at + bytes;
      }
      return at;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** One part of exactly `partLen` bytes, streamed as it arrives (and copied to `spool`); etag undefined when the bytes ended first. */
  async #streamPart(
    metadata: MetadataValue,
    reader: ByteReader,
    partNumber: number,
    partLen: number,
    spool: string,
  ): Promise<{ etag: string | undefined; bytes: number }> {
    const copy = createWriteStream(spool);
    let bytes = 0;
    let sourceError: unknown;
    let short = false;
    // A body that ends short of its Content-Length would leave S3 waiting: the request is aborted instead.
    const abort = new AbortController();
    const body = Readable.from(
      (async function* partBody() {
        while (bytes < partLen) {
          let chunk: Uint8Array | undefined;
          try {
            chunk = await reader.read(partLen - bytes);
          } catch (err) {
            sourceError = err;
            abort.abort(err);
            return;
          }
          if (chunk === undefined) {
            short = true;
            abort.abort(new Error('the request body ended inside a part'));
            return;
          }
          bytes += chunk.byteLength;
          if (!copy.write(chunk)) await drained(copy);
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    body.on('error', () => {
      // Reported through the upload's promise.
    });
    let etag: string | undefined;
    let failure: unknown;
    try {
      const res = await this.client.uploadPart(
        {
          Bucket: this.bucket,
          Key: metadata.file.id,
          UploadId: metadata['upload-id'],
          PartNumber: partNumber,
          Body: body,
          ContentLength: partLen,
        },
        { abortSignal: abort.signal },
      );
      etag = res.ETag;
    } catch (err) {
      failure = err;
    } finally {
      await new Promise<void>((resolve, reject) => copy.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    if (sourceError !== undefined) throw sourceError;
    if (short) return { etag: undefined, bytes };
    if (failure !== undefined) throw failure;
    return { etag, bytes };
  }
}

const partsBytes = (st: PartsState) => st.parts.reduce((n, p) => n + p.Size, 0);
const offsetOf = (st: PartsState) => partsBytes(st) + st.incomplete;

function drained(w: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      w.off('error', fail);
      resolve();
    };
    const fail = (err: Error) => {
      w.off('drain', done);
      reject(err);
    };
    w.once('drain', done);
    w.once('error', fail);
  });
}

async function* concat(...sources: AsyncIterable<Uint8Array>[]): AsyncGenerator<Uint8Array> {
  for (const s of sources) yield* s;
}

/** The rest of the body into `file`; returns its byte count. */
async function spoolRest(reader: ByteReader, file: string): Promise<number> {
  const out = createWriteStream(file);
  let bytes = 0;
  try {
    for (let chunk = await reader.read(Infinity); chunk !== undefined; chunk = await reader.read(Infinity)) {
      bytes += chunk.byteLength;
      if (!out.write(chunk)) await drained(out);
    }
  } finally {
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
  return bytes;
}

/** Pulls a byte stream in pieces of at most n bytes, splitting chunks at part boundaries. */
class ByteReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #pending: Uint8Array | undefined;
  ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async read(max: number): Promise<Uint8Array | undefined> {
    let chunk = this.#pending;
    this.#pending = undefined;
    while (chunk === undefined || chunk.byteLength === 0) {
      if (this.ended) return undefined;
      const r = await this.#it.next();
      if (r.done) {
        this.ended = true;
        return undefined;
      }
      chunk = r.value;
    }
    if (chunk.byteLength <= max) return chunk;
    this.#pending = chunk.subarray(max);
    return chunk.subarray(0, max);
  }
}
