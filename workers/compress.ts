// Compression jobs: storage → zlib (gzip, brotli or zstd) → storage, streamed,
// so memory stays at a few zlib windows whatever the object's size. zlib's
// work runs on libuv's threadpool (UV_THREADPOOL_SIZE threads, shared with fs
// and dns for the whole process); this thread only moves chunks and hashes.

import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip, createZstdCompress, type BrotliOptions, type ZlibOptions } from 'node:zlib';
import type { Transform } from 'node:stream';
import { digest } from '../src/core/stages/digest.ts';
import { toErrorData } from '../src/errors.ts';
import type { CompressAlgorithm } from '../src/core/jobs.ts';
import { workerStorage } from './storage.ts';
import type { CompressTask, TaskResult } from './tasks.ts';

export const COMPRESSED_TYPE: Record<CompressAlgorithm, { mime: string; ext: string }> = {
  gzip: { mime: 'application/gzip', ext: 'gz' },
  brotli: { mime: 'application/x-brotli', ext: 'br' },
  zstd: { mime: 'application/zstd', ext: 'zst' },
};

export function compressor(algorithm: CompressAlgorithm, level: number, sizeHint?: number): Transform {
  switch (algorithm) {
    case 'gzip':
      return createGzip({ level } satisfies ZlibOptions);
    case 'brotli':
      return createBrotliCompress({
        params: {
          [constants.BROTLI_PARAM_QUALITY]: level,
          ...(sizeHint !== undefined ? { [constants.BROTLI_PARAM_SIZE_HINT]: Math.min(sizeHint, 2 ** 31 - 1) } : {}),
        },
      } satisfies BrotliOptions);
    case 'zstd':
      return createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level } });
  }
}

export default async function compress(task: CompressTask): Promise<TaskResult> {
  const signal = AbortSignal.timeout(task.timeoutMs);
  try {
    const storage = workerStorage(task.storage);
    const src = await storage.get(task.inputKey, { signal });
    const sum = digest();
    await pipeline(src.body, compressor(task.algorithm, task.level, src.size), sum.stage, async (body: AsyncIterable<Uint8Array>) => {
      await storage.put(task.outputKey, body, { contentType: COMPRESSED_TYPE[task.algorithm].mime, signal });
    }, { signal });
    const { size, sha256 } = sum.result();
    return { ok: true, output: { size, sha256, ...COMPRESSED_TYPE[task.algorithm], inputSize: src.size } };
  } catch (err) {
    if (signal.aborted) return { ok: false, error: { code: 'JOB_TIMEOUT', message: 'The compression exceeded its time limit' } };
    return { ok: false, error: toErrorData(err) };
  }
}
