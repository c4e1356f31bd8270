// Aborts a body that stops sending. Only time spent waiting for the *source*
// counts: while downstream (storage) applies backpressure we are not waiting on
// the client, so a slow S3 never turns into a client timeout.
// It also ends the wait when the pipeline is aborted (shutdown, client gone):
// an async generator suspended on a source that never answers cannot be
// returned from outside, so without this an aborted upload of a silent client
// would hang until the idle timeout.

import { SluiceError } from '../../errors.ts';

export function idleTimeout(ms: number) {
  return async function* idleTimeoutStage(source: AsyncIterable<Uint8Array>, opts?: { signal?: AbortSignal }): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    const signal = opts?.signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const next = it.next();
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SluiceError('UPLOAD_TIMEOUT', { details: { idleMs: ms } })), ms);
          onAbort = () => reject(signal?.reason);
          signal?.addEventListener('abort', onAbort, { once: true });
        });
        const r = await Promise.race([next, stalled]).finally(() => {
          clearTimeout(timer);
          if (onAbort) signal?.removeEventListener('abort', onAbort);
        });
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // Ends the source (and, for a stream, releases it) on error or early return.
      it.return?.()?.catch(() => {});
    }
  };
}
