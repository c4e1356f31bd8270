// Decides the file's type from its first bytes, in-stream. Nothing is passed
// on until the type is admitted, so a refused file never reaches storage.
// Text types are then checked to stay valid UTF-8 to the last byte.

import { SluiceError } from '../../errors.ts';
import { SNIFF_BYTES, admitType, detectType, type FileType } from '../file-types.ts';

export function sniffType(opts: { allowed: readonly string[]; declared: string | undefined }) {
  let type: FileType | undefined;
  async function* sniffStage(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const it = source[Symbol.asyncIterator]();
    const rest: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => it };
    // A refusal (or any error) must end the source too: stages upstream are suspended
    // in a yield, and only return() runs their finally blocks (the idle timer, the
    // request). Without it every refused upload held its chain for the idle timeout.
    try {
      // Bounded: at most SNIFF_BYTES plus one chunk is held here.
      const head: Uint8Array[] = [];
      let headBytes = 0;
      let ended = false;
      while (headBytes < SNIFF_BYTES) {
        const r = await it.next();
        if (r.done) {
          ended = true;
          break;
        }
        head.push(r.value);
        headBytes += r.value.byteLength;
      }
      const headBuf = Buffer.concat(head);
      const detected = await detectType(headBuf.subarray(0, SNIFF_BYTES), opts.declared);
      type = admitType(detected, opts.declared, opts.allowed);

      const utf8 = detected.text ? new TextDecoder('utf-8', { fatal: true }) : undefined;
      const check = (chunk: Uint8Array) => {
        if (!utf8) return;
        try {
          utf8.decode(chunk, { stream: true });
        } catch {
          throw new SluiceError('TYPE_NOT_ALLOWED', { message: 'The file is not valid UTF-8 text' });
        }
      };
      check(headBuf);
      if (headBuf.byteLength > 0) yield headBuf;
      if (!ended) {
        for await (const chunk of rest) {
          check(chunk);
          yield chunk;
        }
      }
      if (utf8) {
        try {
          utf8.decode(); // flush: a truncated final sequence is invalid
        } catch {
          throw new SluiceError('TYPE_NOT_ALLOWED', { message: 'The file is not valid UTF-8 text' });
        }
      }
    } finally {
      it.return?.()?.catch(() => {});
    }
  }
  return {
    stage: sniffStage,
    /** Available once the stage has yielded its first chunk (or ended). */
    type(): FileType {
      if (!type) throw new Error('type read before sniffing');
      return type;
    },
  };
}
