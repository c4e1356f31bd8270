// Fails the stream the moment it passes `max` bytes, before the offending
// chunk reaches storage, so nothing of an oversized file is committed.

import { SluiceError, type ErrorCode } from '../../errors.ts';

export function byteLimit(max: number, code: ErrorCode = 'FILE_TOO_LARGE') {
  return async function* byteLimitStage(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    let seen = 0;
    for await (const chunk of source) {
      seen += chunk.byteLength;
      if (seen > max) throw new SluiceError(code, { details: { limitBytes: max } });
      yield chunk;
    }
  };
}
