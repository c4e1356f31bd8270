// The request body of a draft creation or append, as the tus store takes it:
//   - released: when a newer request for the same upload takes over (the
//     lock's release request), the body ends cleanly at once, even if the old
//     socket has gone silent, so the store keeps every byte that arrived and
//     the lock is free for the newcomer. The caller then ends the old request.
//   - bounded: more bytes than the upload's length (or the file size limit,
//     while the length is unknown) fail the write with a coded error before
//     the offending chunk reaches the store.
// Disconnects and the idle timeout are the store's own (tus/store.ts).

import { byteLimit } from '../core/stages/byte-limit.ts';
import type { ErrorCode } from '../errors.ts';

export interface Release {
  /** Aborted when another request asked for the upload's lock. */
  signal: AbortSignal;
  /** The lock's RequestRelease callback. */
  request(): Promise<void>;
  readonly released: boolean;
}

export function releasable(): Release {
  const ac = new AbortController();
  return {
    signal: ac.signal,
    request: async () => ac.abort(),
    get released() {
      return ac.signal.aborted;
    },
  };
}

/** `source` until it ends or `signal` aborts; a read pending at the abort is abandoned (the caller destroys the socket). */
export async function* untilReleased(source: AsyncIterator<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  if (signal.aborted) return;
  const stop = new Promise<'stop'>((resolve) => signal.addEventListener('abort', () => resolve('stop'), { once: true }));
  for (;;) {
    const r = await Promise.race([source.next(), stop]);
    if (r === 'stop' || r.done) return;
    yield r.value;
  }
}

export function boundedBody(
  source: AsyncIterator<Uint8Array>,
  release: Release,
  maxBytes: number,
  code: ErrorCode,
): AsyncGenerator<Uint8Array> {
  return byteLimit(maxBytes, code)(untilReleased(source, release.signal));
}
