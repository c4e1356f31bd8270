// A Storage that records latency, errors and bytes of every operation of the
// storage it wraps, so adapters stay free of metrics. Optional capabilities
// (sweepStale, putIf, localFile) are passed through only where the wrapped storage has them.

import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isSluiceError } from '../errors.ts';
import type { SluiceMetrics } from '../metrics.ts';
import {
  canObserveRequests, canSweepStale, canWriteConditionally, hasLocalFiles, type ConditionalWrites, type LocalFiles, type GetOptions, type GetResult, type ListOptions,
  type ListResult, type ObjectInfo, type PutOptions, type PutResult, type StaleUploadSweeper, type Storage,
} from './storage.ts';

type Op = 'put' | 'get' | 'head' | 'delete' | 'list' | 'ready' | 'sweep';

export class InstrumentedStorage implements Storage {
  readonly inner: Storage;
  readonly #m: SluiceMetrics;
  readonly sweepStale?: StaleUploadSweeper['sweepStale'];
  readonly putIf?: ConditionalWrites['putIf'];
  readonly localFile?: LocalFiles['localFile'];

  constructor(inner: Storage, metrics: SluiceMetrics) {
    this.inner = inner;
    this.#m = metrics;
    // Finding an object's file is a metadata look-up (stat), so it is timed as a head.
    if (hasLocalFiles(inner)) this.localFile = (key) => this.#timed('head', () => inner.localFile(key));
    if (canSweepStale(inner)) this.sweepStale = (opts) => this.#timed('sweep', () => inner.sweepStale(opts));
    if (canWriteConditionally(inner)) {
      // Timed as a put; a refused condition is an outcome (conflict), not a storage fault.
      this.putIf = (key, body, opts) => this.#timed('put', () => inner.putIf(key, body, opts), opts.signal);
    }
    if (canObserveRequests(inner)) {
      // Label children cached per operation: resolving labels on every request hashes them each time.
      const children = new Map<string, { inc(): void }>();
      inner.observeRequests((op) => {
        let c = children.get(op);
        if (!c) children.set(op, (c = metrics.storageRequests.labels(inner.kind, op)));
        c.inc();
      });
    }
  }

  get kind(): string {
    return this.inner.kind;
  }

  get bufferedBytesPerPut(): number {
    return this.inner.bufferedBytesPerPut;
  }

  put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> {
    const bytes = this.#m.storageBytes.labels(this.kind, 'in');
    let inputFailed = false;
    async function* counted(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) {
          bytes.inc(chunk.byteLength);
          yield chunk;
        }
      } catch (err) {
        inputFailed = true; // a limit, a bad type, a client gone: not a storage fault
        throw err;
      }
    }
    return this.#timed('put', () => this.inner.put(key, counted(), opts), opts.signal, () => inputFailed);
  }

  async get(key: string, opts?: GetOptions): Promise<GetResult> {
    const res = await this.#timed('get', () => this.inner.get(key, opts), opts?.signal);
    const bytes = this.#m.storageBytes.labels(this.kind, 'out');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes.inc(chunk.byteLength);
        done(null, chunk);
      },
    });
    // pipeline destroys the source when the reader goes away, and passes source errors on.
    pipeline(res.body, counter).catch(() => {});
    return { body: counter as Readable, size: res.size, ...(res.etag !== undefined ? { etag: res.etag } : {}) };
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#timed('head', () => this.inner.head(key));
  }

  delete(key: string): Promise<void> {
    return this.#timed('delete', () => this.inner.delete(key));
  }

  list(opts: ListOptions): Promise<ListResult> {
    return this.#timed('list', () => this.inner.list(opts));
  }

  ready(): Promise<void> {
    return this.#timed('ready', () => this.inner.ready());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #timed<T>(op: Op, fn: () => Promise<T>, signal?: AbortSignal, inputFailed?: () => boolean): Promise<T> {
    const end = this.#m.storageDuration.startTimer({ backend: this.kind, op });
    try {
      const out = await fn();
      end({ outcome: 'ok' });
      return out;
    } catch (err) {
      // A caller's abort or a missing key is not a storage fault.
      const code = isSluiceError(err) ? err.code : 'UNKNOWN';
      const outcome = signal?.aborted || inputFailed?.() ? 'aborted' : code === 'FILE_NOT_FOUND' ? 'not_found' : code === 'WRITE_CONFLICT' ? 'conflict' : 'error';
      end({ outcome });
      if (outcome === 'error') this.#m.storageErrors.inc({ backend: this.kind, op, code });
      throw err;
    }
  }
}

/**
 * The adapter under any wrappers that expose it as `inner` (this one does):
 * for code that needs an adapter's own capabilities, such as the S3 client for tus locks.
 */
export function baseStorage(s: Storage): Storage {
  let cur: Storage & { inner?: Storage } = s;
  while (cur.inner) cur = cur.inner;
  return cur;
}
