// An image job's original as a file libvips can read sequentially.
//
// sharp accepts a readable stream, but gathers it whole in memory before
// libvips sees a byte (its _write pushes every chunk, then Buffer.concat): a
// 1 GiB TIFF would cost 1 GiB, twice during the concat. Given a file path,
// libvips decodes with sequential access, a few scanlines or strips at a time
// (JPEG also shrinks on load), and limitInputPixels still refuses a pixel bomb
// from its header before any pixel is decoded.
//
// So: a backend with local files (fs) hands over the object's own file; any
// other (S3) streams the object into a spool file first, in the stream's own
// chunks (bounded memory, 64 KiB reads), removed when the job ends.
// Disk per job in flight: the original's size, in `dir` (the OS temp dir).

import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { hasLocalFiles, type Storage } from '../src/storage/storage.ts';

export interface ImageInput {
  /** A path for sharp(); never the bytes. */
  file: string;
  size: number;
  /** True when `file` is a spool copy (removed by release). */
  spooled: boolean;
  release(): Promise<void>;
}

export async function openImageInput(storage: Storage, key: string, opts: { dir: string; signal: AbortSignal }): Promise<ImageInput> {
  if (hasLocalFiles(storage)) {
    const { file, size } = await storage.localFile(key);
    return { file, size, spooled: false, release: async () => {} };
  }
  const src = await storage.get(key, { signal: opts.signal });
  const dir = await mkdtemp(path.join(opts.dir, 'sluice-image-'));
  const release = () => rm(dir, { recursive: true, force: true });
  const file = path.join(dir, randomUUID());
  try {
    await pipeline(src.body, createWriteStream(file, { flags: 'wx' }), { signal: opts.signal });
  } catch (err) {
    src.body.destroy();
    await release();
    throw err;
  }
  return { file, size: src.size, spooled: true, release };
}
