// sha256 and byte count computed in-stream. When the client sent a digest, a
// mismatch throws *before* the stream ends, so storage never commits the object.

import { createHash } from 'node:crypto';
import { SluiceError } from '../../errors.ts';

export interface DigestResult {
  sha256: string; // lowercase hex
  size: number;
}

export function digest(expectedSha256?: Buffer) {
  let result: DigestResult | undefined;
  async function* digestStage(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.byteLength;
      yield chunk;
    }
    const actual = hash.digest();
    if (expectedSha256 && !actual.equals(expectedSha256)) {
      throw new SluiceError('CHECKSUM_MISMATCH', {
        details: { expected: expectedSha256.toString('hex'), actual: actual.toString('hex') },
      });
    }
    result = { sha256: actual.toString('hex'), size };
  }
  return {
    stage: digestStage,
    /** Available once the stage has consumed its whole source. */
    result(): DigestResult {
      if (!result) throw new Error('digest read before the stream ended');
      return result;
    },
  };
}
