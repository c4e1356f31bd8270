// Aborts a body that stops sending. Only time spent waiting for the *source*
// counts: while downstream (storage) applies backpressure we are not waiting on
// the client, so a slow S3 never turns into a client timeout.

import { SluiceError } from '../../errors.ts';

export function idleTimeout(ms: number) {
  return async function* idleTimeoutStage(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    let timer: NodeJS.Timeout | undefined;
    try {
      for (;;) {
        const next = it.next();
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SluiceError('UPLOAD_TIMEOUT', { details: { idleMs: ms } })), ms);
        });
        const r = await Promise.race([next, stalled]).finally(() => clearTimeout(timer));
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // Ends the source (and, for a stream, releases it) on error or early return.
      it.return?.()?.catch(() => {});
    }
  };
}
