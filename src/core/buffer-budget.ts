// A process-wide budget of upload bytes that may sit in memory at once.
// Each upload reserves its worst case before its body is read; when the budget
// is spent, new uploads wait in FIFO order with their sockets unread, so many
// concurrent clients cost waiting time instead of memory.

import { SluiceError } from '../errors.ts';

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class BufferBudget {
  readonly capacity: number;
  #used = 0;
  #queue: Waiter[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get used(): number {
    return this.#used;
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
      this.#drain();
    });
    if (this.#queue.length === 0 && this.#used + want <= this.capacity) {
      this.#used += want;
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

  #drain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (this.#used + head.bytes > this.capacity) return;
      this.#queue.shift();
      this.#used += head.bytes;
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
