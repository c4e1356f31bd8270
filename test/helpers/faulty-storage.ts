// A real Storage (fs or MinIO) with a fault switch in front of its writes, so a
// test can force a storage outage or hold a write at the exact step it names
// (e.g. the manifest put of a finish) and let it go on an event of its own.
// Everything not matched passes straight through to the real backend.

import type { GetOptions, GetResult, ListOptions, ListResult, ObjectInfo, PutOptions, PutResult, Storage } from '../../src/storage/storage.ts';
import { SluiceError } from '../../src/errors.ts';

export type PutFault =
  /** The put fails as if storage were down; the body is never written. */
  | { kind: 'down' }
  /** The put waits for `release` and then fails (`fail: true`) or goes through. */
  | { kind: 'hold'; release: Promise<{ fail: boolean }> };

export class FaultyStorage implements Storage {
  readonly inner: Storage;
  /** Decides, put by put, whether a fault applies. */
  putFault: (key: string) => PutFault | undefined = () => undefined;
  /** Puts in progress now, by key, and the most ever seen at once for a key. */
  readonly inFlight = new Map<string, number>();
  readonly maxInFlight = new Map<string, number>();
  /** Called when a put of `key` starts (before any fault). */
  onPut: (key: string) => void = () => {};

  constructor(inner: Storage) {
    this.inner = inner;
  }

  get kind(): string {
    return this.inner.kind;
  }

  get bufferedBytesPerPut(): number {
    return this.inner.bufferedBytesPerPut;
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> {
    const now = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, now);
    this.maxInFlight.set(key, Math.max(now, this.maxInFlight.get(key) ?? 0));
    try {
      this.onPut(key);
      const fault = this.putFault(key);
      if (fault?.kind === 'down') throw new SluiceError('STORAGE_UNAVAILABLE');
      if (fault?.kind === 'hold' && (await fault.release).fail) throw new SluiceError('STORAGE_UNAVAILABLE');
      return await this.inner.put(key, body, opts);
    } finally {
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
    }
  }

  get(key: string, opts?: GetOptions): Promise<GetResult> {
    return this.inner.get(key, opts);
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.inner.head(key);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  list(opts: ListOptions): Promise<ListResult> {
    return this.inner.list(opts);
  }

  ready(): Promise<void> {
    return this.inner.ready();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
