// Upload bodies for benchmarks: a real PNG head (so sluice's type check
// passes) followed by pseudo-random bytes, generated on the fly so the client
// costs no disk I/O and little memory.

import { randomBytes } from 'node:crypto';
import sharp from 'sharp';

const BLOCK = randomBytes(1024 * 1024);
let head: Buffer | undefined;

export async function* payload(size: number, chunk = 256 * 1024): AsyncGenerator<Buffer> {
  head ??= await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } }).png().toBuffer();
  yield head;
  let left = size - head.length;
  let offset = 0;
  while (left > 0) {
    const n = Math.min(chunk, left, BLOCK.length - offset);
    yield BLOCK.subarray(offset, offset + n);
    offset = (offset + n) % BLOCK.length;
    left -= n;
  }
}
