// A process-wide budget of upload bytes that may sit in memory at once, and of
// uploads whose bodies are read at once. Each upload reserves its worst case
// before its body is read; when either is spent, new uploads wait in FIFO
// order with their sockets unread, so many concurrent clients cost waiting
// time instead of memory and event-loop time.
//
// Why a count as well as bytes: 10,000 small uploads fit the byte budget 2,000
// at a time, and 2,000 bodies ready at once make one event-loop turn last
// hundreds of ms (every other request, /health included, waits behind it). A
// waiting client's body still travels: it fills the kernel's socket buffers, so
// a small upload admitted late is read at once (docs/performance.md).

import { SluiceError } from '../errors.ts';

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class BufferBudget {
  readonly capacity: number;
  /** Reservations held at once; 0: no cap. */
  readonly maxHolders: number;
  #used = 0;
  #holders = 0;
  #queue: Waiter[] = [];

  constructor(capacity: number, maxHolders = 0) {
    this.capacity = capacity;
    this.maxHolders = maxHolders;
  }

  get used(): number {
    return this.#used;
  }

  /** Reservations held now. */
  get holders(): number {
    return this.#holders;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Reserve `bytes` (clamped to the capacity, so one huge upload can still run
   * alone). Resolves to a release function; call it exactly once. Rejects with
   * BUSY after `timeoutMs`, or with the signal's reason when it aborts.
   */
  async reserve(bytes: number, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<() => void> {
    const want = Math.min(Math.max(0, bytes), this.capacity);
    const release = once(() => {
      this.#used -= want;
      this.#holders--;
      this.#drain();
    });
    if (this.#queue.length === 0 && this.#fits(want)) {
      this.#used += want;
      this.#holders++;
      return release;
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: want,
        grant: () => {
          cleanup();
          resolve(release);
        },
      };
      const drop = (err: unknown) => {
        cleanup();
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        this.#drain();
        reject(err);
      };
      const timer = setTimeout(() => drop(new SluiceError('BUSY', { message: 'Too many uploads are in progress; retry later' })), opts.timeoutMs);
      const onAbort = () => drop(opts.signal?.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      this.#queue.push(waiter);
    });
  }

  #fits(bytes: number): boolean {
    return this.#used + bytes <= this.capacity && (this.maxHolders === 0 || this.#holders < this.maxHolders);
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (!this.#fits(head.bytes)) return;
      this.#queue.shift();
      this.#used += head.bytes;
      this.#holders++;
      head.grant();
    }
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
