// The storage port. Small on purpose: every backend implements these five
// operations plus a readiness probe, and test/contract/ proves each backend
// behaves the same. Optional capabilities live in separate interfaces.

import type { Readable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface PutOptions {
  contentType: string;
  /** Small string metadata stored with the object where the backend can (S3 user metadata). */
  metadata?: Record<string, string>;
  /** Aborting rejects the put and leaves nothing behind (no object, no pending multipart upload). */
  signal?: AbortSignal;
  /** The body's exact length when known up front (S3 sizes its parts from it). */
  sizeHint?: number | undefined;
}

export interface PutResult {
  size: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  contentType?: string;
  /** The object's version tag, from head() of a backend with ConditionalWrites (listings leave it out). */
  etag?: string;
}

export interface GetOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

export interface GetResult {
  body: Readable;
  /** Size of the whole object, not of the range. */
  size: number;
  /** The version tag of the bytes in `body`, from a backend with ConditionalWrites. */
  etag?: string;
}

export interface ListOptions {
  /** Keys are listed under this prefix, in ascending lexicographic order. */
  prefix: string;
  /**
   * With a delimiter, keys sharing the next path segment are folded into one
   * `prefixes` entry (S3 CommonPrefixes semantics).
   */
  delimiter?: '/';
  /** List only keys (and prefixes) that sort strictly after this key. */
  startAfter?: string | undefined;
  /** Maximum keys plus prefixes returned (S3 caps this at 1000). */
  limit?: number;
}

export interface ListResult {
  objects: ObjectInfo[];
  prefixes: string[];
  /** More keys follow; continue with startAfter set to the last key or prefix returned. */
  truncated: boolean;
}

export interface Storage {
  /** A short label for logs and metrics ("fs", "s3"). */
  readonly kind: string;
  /**
   * Worst-case bytes one put holds in memory (S3: part size × (queue size + 2);
   * fs: a stream buffer). Uploads reserve this from the process-wide budget.
   */
  readonly bufferedBytesPerPut: number;
  /**
   * Store a stream atomically: the object becomes visible only when the whole
   * body was read without error. If `body` throws or the signal aborts,
   * nothing is left behind and the promise rejects with that error.
   */
  put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult>;
  /** Rejects with FILE_NOT_FOUND when absent, RANGE_NOT_SATISFIABLE for a bad range. */
  get(key: string, opts?: GetOptions): Promise<GetResult>;
  head(key: string): Promise<ObjectInfo | null>;
  /** Idempotent: deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  list(opts: ListOptions): Promise<ListResult>;
  /** Resolves when the backend answers; rejects with STORAGE_UNAVAILABLE otherwise. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Optional: backends with resumable/multipart state that can go stale. */
export interface StaleUploadSweeper {
  /** Abort multipart uploads / remove temp files under `prefix` older than `olderThan`. Returns how many. */
  sweepStale(opts: SweepStaleOptions): Promise<number>;
}

export interface SweepStaleOptions {
  prefix: string;
  olderThan: Date;
  /** Only the upload state of this one key (under `prefix`): one bounded lookup, not a listing of the bucket's uploads. */
  key?: string;
  /** Spares the upload state of a key for which this resolves true (e.g. a live resumable upload). */
  keep?: (key: string) => Promise<boolean>;
}

/**
 * When a conditional write may go ahead: only if no object is at the key, or
 * only if the object at the key still has the etag the writer last saw (a
 * missing object fails that test too, so a deleted object is never written back).
 */
export type WriteCondition = { ifAbsent: true } | { ifMatch: string };

/**
 * Optional: writes that succeed only while the object is as the writer last
 * saw it (S3 If-None-Match / If-Match; fs: a per-key lock and rename). With
 * them, a read-modify-write is a compare-and-swap, and a "create" cannot
 * overwrite what another writer made.
 *
 * - An etag is an opaque version tag: head() and get() of a backend with this
 *   capability always return one, and putIf() returns the new one. Compare
 *   etags only with etags of the same key and backend.
 * - A failed condition rejects with WRITE_CONFLICT and changes nothing.
 * - fs: atomic between writers of one process (the per-key lock); across
 *   processes on one directory, `ifAbsent` is still atomic (link(2)), `ifMatch`
 *   is not. S3: atomic for every writer of the bucket.
 * - There is no conditional delete: MinIO ignores If-Match on DeleteObject
 *   (deletes anyway). To give something up safely, overwrite it with ifMatch.
 */
export interface ConditionalWrites {
  /** put(), made visible only if `opts.condition` holds at that moment. Resolves with the new object's etag. */
  putIf(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions & { condition: WriteCondition }): Promise<PutResult & { etag: string }>;
}

export function canWriteConditionally(s: Storage): s is Storage & ConditionalWrites {
  const c = s as Partial<ConditionalWrites>;
  return typeof c.putIf === 'function';
}

/** The storage's ConditionalWrites, or an error saying which backend lacks them (manifests need them). */
export function conditionalWrites(s: Storage): Storage & ConditionalWrites {
  if (!canWriteConditionally(s)) throw new Error(`the ${s.kind} storage backend has no conditional writes, which manifests need`);
  return s;
}

/** Optional: backends that talk to a remote store in requests of their own (S3: one per SDK call and retry). */
export interface RequestObserver {
  /** `onRequest(operation)` runs once per request sent to the store; set once, at start-up. */
  observeRequests(onRequest: (operation: string) => void): void;
}

export function canObserveRequests(s: Storage): s is Storage & RequestObserver {
  return typeof (s as Partial<RequestObserver>).observeRequests === 'function';
}

/**
 * Optional: backends whose objects are files on this machine. A reader that
 * needs a file (libvips decodes a path sequentially, while a stream given to
 * sharp is first gathered whole in memory) uses it instead of a copy.
 */
export interface LocalFiles {
  /** The object's file, for reading only; rejects with FILE_NOT_FOUND when absent. */
  localFile(key: string): Promise<{ file: string; size: number }>;
}

export function hasLocalFiles(s: Storage): s is Storage & LocalFiles {
  return typeof (s as Partial<LocalFiles>).localFile === 'function';
}

export function canSweepStale(s: Storage): s is Storage & StaleUploadSweeper {
  return typeof (s as Partial<StaleUploadSweeper>).sweepStale === 'function';
}

/** Read a whole (small) object, such as a manifest, into memory. Bounded by `maxBytes`. */
export async function readSmallObject(storage: Storage, key: string, maxBytes = 1024 * 1024): Promise<Buffer> {
  return (await readSmallObjectVersion(storage, key, maxBytes)).bytes;
}

/** readSmallObject with the etag of the version read (undefined on a backend without ConditionalWrites). */
export async function readSmallObjectVersion(storage: Storage, key: string, maxBytes = 1024 * 1024): Promise<{ bytes: Buffer; etag: string | undefined }> {
  const { body, size, etag } = await storage.get(key);
  if (size > maxBytes) {
    body.destroy();
    throw new Error(`object ${key} is ${size} bytes, over the ${maxBytes} byte bound for small objects`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), etag };
}

export async function* bytesOf(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  yield buf;
}
