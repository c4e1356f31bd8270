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
}

export interface PutResult {
  size: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  contentType?: string;
}

export interface GetOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

export interface GetResult {
  body: Readable;
  /** Size of the whole object, not of the range. */
  size: number;
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
  sweepStale(opts: { prefix: string; olderThan: Date }): Promise<number>;
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
  const { body, size } = await storage.get(key);
  if (size > maxBytes) {
    body.destroy();
    throw new Error(`object ${key} is ${size} bytes, over the ${maxBytes} byte bound for small objects`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function* bytesOf(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  yield buf;
}
