// Aborts a body that stops sending. Only time spent waiting for the *source*
// counts: while downstream (storage) applies backpressure we are not waiting on
// the client, so a slow S3 never turns into a client timeout.
// It also ends the wait when the pipeline is aborted (shutdown, client gone):
// an async generator suspended on a source that never answers cannot be
// returned from outside, so without this an aborted upload of a silent client
// would hang until the idle timeout.
//
// Per chunk this costs one promise and a timer refresh: the timer and the
// abort listener live as long as the stage (a timer and a listener per chunk
// were a measurable share of a slow upload's CPU, docs/performance.md).

import { SluiceError } from '../../errors.ts';

export function idleTimeout(ms: number) {
  return async function* idleTimeoutStage(source: AsyncIterable<Uint8Array>, opts?: { signal?: AbortSignal }): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    const signal = opts?.signal;
    /** Rejects the wait in progress; undefined while downstream holds the chunk. */
    let failWait: ((err: unknown) => void) | undefined;
    let waitStarted = 0;
    const timer = setTimeout(function onIdle() {
      if (!failWait) return; // not waiting on the client: the next wait re-arms the timer
      const waited = performance.now() - waitStarted;
      // refresh() may fire a little early under a busy loop; wait out the rest.
      if (waited < ms - 1) {
        timer.refresh();
        return;
      }
      failWait(new SluiceError('UPLOAD_TIMEOUT', { details: { idleMs: ms } }));
    }, ms);
    const onAbort = () => failWait?.(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        signal?.throwIfAborted();
        const r = await new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
          failWait = reject;
          waitStarted = performance.now();
          timer.refresh();
          it.next().then(resolve, reject);
        });
        failWait = undefined;
        if (r.done) return;
        yield r.value;
      }
    } finally {
      failWait = undefined;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // Ends the source (and, for a stream, releases it) on error or early return.
      it.return?.()?.catch(() => {});
    }
  };
}
