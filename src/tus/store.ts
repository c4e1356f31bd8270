// The tus data store: @tus/file-store for the fs backend, @tus/s3-store for S3
// (with parts streamed as they arrive: s3-part-store.ts),
// both writing at the file's final key (keys.ts), behind a decorator that adds
// what sluice needs on every write:
//   - an idle timeout, so a client that stops sending releases the upload;
//   - keep-what-arrived: when the client's connection drops mid-PATCH, the
//     store sees a clean end of the body instead of an error, so every byte
//     received is kept (the S3 store stores a short tail as its `.part`
//     object) and the client resumes from there: nothing it delivered is
//     sent twice. The bytes kept are always a prefix of what the client sent;
//     PATCHes carrying Upload-Checksum never get here unverified (checksum.ts);
//   - the type check from the upload's first bytes, at the write that starts
//     at offset 0 (the first PATCH, or the body of a creation-with-upload
//     POST): a refused type never gets past its first SNIFF_BYTES, and the
//     upload is removed at once;
//   - the sha256 (and UTF-8 check) carried across writes (carried-digest.ts);
//   - on S3, a short-lived cache of upload infos whose "complete" answers are
//     confirmed against the bucket (ShortCache, getUpload).
//
// Bounds: on S3 each part streamed is also copied to a temp file in
// os.tmpdir() (disk, not memory: one part per PATCH in progress), and this
// decorator holds at most SNIFF_BYTES plus one chunk while sniffing.

import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { MetadataValue } from '@tus/s3-store';
import { DataStore, ERRORS, type KvStore, type Upload } from '@tus/utils';
import type { Config } from '../config.ts';
import { SNIFF_BYTES, admitType, detectType } from '../core/file-types.ts';
import { idleTimeout } from '../core/stages/idle-timeout.ts';
import { isSluiceError, type SluiceError } from '../errors.ts';
import { CarriedDigests, type CarriedDigest } from './carried-digest.ts';
import type { StreamingS3Store } from './s3-part-store.ts';

/**
 * Bytes handed to a store per write call. Socket reads arrive in 16–64 KiB
 * pieces, and both stores write each piece with its own awaited file write (the
 * S3 store spools parts to disk): gathering 1 MiB first cuts those system calls
 * ~30-fold. Bound: one such buffer per PATCH in progress.
 */
const WRITE_CHUNK_BYTES = 1024 * 1024;

/** Parts of one store uploading at once, across all uploads (the S3 store's semaphore). */
const S3_PARTS_IN_FLIGHT = 16;

export interface TusStoreHooks {
  /** Called when the first bytes were refused; must remove the upload and its marker. */
  onRefused(uploadKey: string): Promise<void>;
  /** Called after the tus store removed an upload (termination): removes what the store leaves (S3 `.part`, the marker). */
  onRemoved(uploadKey: string): Promise<void>;
  /** Whether a storage key exists (the S3 info object, to confirm a cached upload). */
  exists(key: string): Promise<boolean>;
  /** This instance's lease on the upload's lock, as an identity (undefined: none); the S3 store trusts its remembered parts only under the same lease. */
  leaseOf(uploadKey: string): unknown;
}

export interface TusStore extends DataStore {
  /** Make the assembled upload durable before it is committed (fsync on fs; no-op on S3). */
  flush(uploadKey: string): Promise<void>;
  /** The sha256 and type carried across the upload's writes, when this process saw them all (carried-digest.ts). */
  takeDigest(uploadKey: string, size: number): CarriedDigest | undefined;
}

/** The S3 store (@tus/s3-store and the AWS SDK under it) is imported only for S3 storage, @tus/file-store only for fs. */
export async function createTusStore(config: Readonly<Config>, hooks: TusStoreHooks): Promise<TusStore> {
  const expirationPeriodInMilliseconds = config.tus.expiryMs;
  if (config.storage.kind === 's3') {
    const s3 = config.storage.s3;
    const checksum = s3.checksum === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
    // Equal parts (R2): a PATCH's tail shorter than a whole part is kept as the
    // store's incomplete `.part` object instead of becoming a short part.
    const wholePart = Math.max(s3.partSize, Math.ceil(s3.maxObjectBytes / s3.maxParts));
    const { StreamingS3Store: Store } = await import('./s3-part-store.ts');
    const inner: StreamingS3Store = new Store({
      partSize: s3.partSize,
      maxMultipartParts: s3.maxParts,
      minPartSize: s3.equalParts ? wholePart : s3.minPartSize,
      maxConcurrentPartUploads: S3_PARTS_IN_FLIGHT,
      expirationPeriodInMilliseconds,
      // Expiry is handled by our sweep (sweep.ts), not by bucket lifecycle rules on tags.
      useTags: false,
      cache: new ShortCache(),
      s3ClientConfig: {
        bucket: s3.bucket,
        region: s3.region,
        ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
        forcePathStyle: s3.forcePathStyle,
        ...(s3.accessKeyId && s3.secretAccessKey ? { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } } : {}),
        requestChecksumCalculation: checksum,
        responseChecksumValidation: checksum,
      },
    }, hooks.leaseOf);
    // A deferred length is planned for the largest upload sluice accepts, not S3's 5 TiB
    // (which would make every part of such an upload 550 MB).
    (inner as { maxUploadSize: number }).maxUploadSize = s3.maxObjectBytes; // typed as the 5 TiB literal
    // A cached info may outlive the upload (removed on another instance): a
    // "complete" answer is confirmed against the bucket before it is believed.
    const confirm = (key: string) => hooks.exists(`${key}.info`);
    return new GuardedStore(config, inner, hooks, async () => {}, confirm);
  }
  const directory = path.resolve(config.storage.dataDir);
  const { FileStore } = await import('@tus/file-store');
  const inner = new FileStore({ directory, expirationPeriodInMilliseconds });
  return new GuardedStore(config, inner, hooks, async (key) => {
    const fh = await open(path.join(directory, ...key.split('/')), 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

class GuardedStore extends DataStore implements TusStore {
  readonly #config: Readonly<Config>;
  readonly #inner: DataStore;
  readonly #hooks: TusStoreHooks;
  readonly #flush: (key: string) => Promise<void>;
  readonly #confirm: ((key: string) => Promise<boolean>) | undefined;
  readonly digests = new CarriedDigests();

  constructor(
    config: Readonly<Config>,
    inner: DataStore,
    hooks: TusStoreHooks,
    flush: (key: string) => Promise<void>,
    confirm?: (key: string) => Promise<boolean>,
  ) {
    super();
    this.#config = config;
    this.#inner = inner;
    this.#hooks = hooks;
    this.#flush = flush;
    this.#confirm = confirm;
    // checksum: verified before the store sees the body (checksum.ts).
    this.extensions = [...inner.extensions, 'checksum'];
  }

  override create(upload: Upload): Promise<Upload> {
    return this.#inner.create(upload);
  }

  override async remove(id: string): Promise<void> {
    await this.#inner.remove(id);
    await this.#hooks.onRemoved(id);
  }

  override async getUpload(id: string): Promise<Upload> {
    const upload = await this.#inner.getUpload(id);
    // The S3 store reports an upload whose multipart upload is gone as complete;
    // with a cached info that could be one removed by another instance.
    if (this.#confirm && upload.size !== undefined && upload.offset === upload.size && !(await this.#confirm(id))) {
      throw ERRORS.FILE_NOT_FOUND;
    }
    return upload;
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    return this.#inner.declareUploadLength(id, length);
  }

  override deleteExpired(): Promise<number> {
    // Never the stores' own: the S3 one lists every multipart upload in the bucket. See sweep.ts.
    return Promise.resolve(0);
  }

  override getExpiration(): number {
    return this.#inner.getExpiration();
  }

  flush(key: string): Promise<void> {
    return this.#flush(key);
  }

  takeDigest(key: string, size: number): CarriedDigest | undefined {
    return this.digests.take(key, size);
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const guarded = idleTimeout(this.#config.timeouts.uploadIdleMs)(untilDisconnect(stream));
    let body: AsyncIterable<Uint8Array> = guarded;
    if (offset === 0) {
      this.digests.start(id);
      body = await this.#admitFirstBytes(id, guarded);
    }
    // The fs store reports every failure as FILE_WRITE_ERROR: note our own errors (a refusal, the idle timeout) on the way out.
    let ours: SluiceError | undefined;
    const tracked = this.digests.track(id, offset, body);
    const noted = (async function* () {
      try {
        yield* tracked;
      } catch (err) {
        ours = isSluiceError(err) ? err : undefined;
        throw err;
      }
    })();
    try {
      const stored = await this.#inner.write(Readable.from(coalesce(noted, WRITE_CHUNK_BYTES), { objectMode: false }), id, offset);
      this.digests.settle(id, stored);
      return stored;
    } catch (err) {
      this.digests.drop(id);
      const refusal = refusalIn(ours) ?? refusalIn(err);
      if (refusal) {
        await this.#hooks.onRefused(id);
        throw refusal;
      }
      throw ours ?? err;
    }
  }

  /** The type check on the upload's first bytes; returns the body to store (the head replayed). */
  async #admitFirstBytes(id: string, guarded: AsyncGenerator<Uint8Array>): Promise<AsyncIterable<Uint8Array>> {
    const upload = await this.#inner.getUpload(id);
    const want = Math.min(SNIFF_BYTES, upload.size ?? SNIFF_BYTES);
    const head: Uint8Array[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < want) {
      const r = await guarded.next();
      if (r.done) {
        ended = true;
        break;
      }
      head.push(r.value);
      headBytes += r.value.byteLength;
    }
    // A first write shorter than the sniff window (and than the upload) cannot
    // be judged yet; the read-back at the finish judges the whole file then.
    if (headBytes >= want || (ended && headBytes === upload.size)) {
      const buf = Buffer.concat(head);
      const declared = upload.metadata?.filetype ?? upload.metadata?.type ?? undefined;
      try {
        const detected = await detectType(buf.subarray(0, SNIFF_BYTES), declared);
        this.digests.setType(id, admitType(detected, declared, this.#config.allowedTypes), detected.text);
      } catch (err) {
        this.digests.drop(id);
        await guarded.return(undefined);
        await this.#hooks.onRefused(id);
        throw err;
      }
    }
    return (async function* replay() {
      yield* head;
      if (!ended) yield* guarded;
    })();
  }
}

/** Our coded refusal, wherever the store put it (directly, or as the cause of its own error). */
function refusalIn(err: unknown): SluiceError | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    if (isSluiceError(e) && (e.code === 'TYPE_NOT_ALLOWED' || e.code === 'TYPE_MISMATCH')) return e;
  }
  return undefined;
}

/** The same bytes in pieces of about `size` (the last may be shorter). */
async function* coalesce(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of source) {
    pending.push(chunk);
    bytes += chunk.byteLength;
    if (bytes >= size) {
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
      pending = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes);
}

/** The body, ending cleanly (instead of failing) when the client's connection dropped. */
async function* untilDisconnect(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk;
  } catch (err) {
    if (!isDisconnect(err)) throw err;
  }
}

function isDisconnect(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string } | null;
  return (
    e?.code === 'ECONNRESET' ||
    e?.code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    e?.code === 'ABORT_ERR' ||
    e?.name === 'AbortError' ||
    e?.message === 'aborted'
  );
}

/**
 * The S3 store's cache of upload info objects, kept short: any PATCH may reach
 * any instance, so an entry lives CACHE_TTL_MS at most, and infos whose length
 * is still deferred (the only field another instance may change) are never
 * cached. Saves ~3 GETs per PATCH. Bounded to CACHE_MAX entries.
 */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 10_000;
class ShortCache implements KvStore<MetadataValue> {
  readonly #entries = new Map<string, { value: MetadataValue; at: number }>();
  async get(key: string): Promise<MetadataValue | undefined> {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (Date.now() - e.at > CACHE_TTL_MS) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }
  async set(key: string, value: MetadataValue): Promise<void> {
    if (value.file.size === undefined) return;
    if (this.#entries.size >= CACHE_MAX) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, at: Date.now() });
  }
  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }
}
