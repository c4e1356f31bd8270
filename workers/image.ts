// Image jobs (sharp): resize presets and full-size conversions. Every output is
// auto-oriented from EXIF and carries no metadata (sharp drops EXIF, GPS, XMP
// and ICC unless asked to keep them). Pixel bombs stop at limitInputPixels,
// corrupt data at failOn, slow work at sharp's timeout.

import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { move } from 'piscina';
import sharp, { type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { digest } from '../src/core/stages/digest.ts';
import { isSluiceError, type ErrorData } from '../src/errors.ts';
import { openImageInput } from './image-input.ts';
import { workerStorage } from './storage.ts';
import type { ImageTask, TaskOutput, TaskResult } from './tasks.ts';
import type { Storage } from '../src/storage/storage.ts';

// Decoded-image cache off: jobs never revisit an input, and the cache is what
// grows RSS in long-running worker threads.
sharp.cache(false);

const MIME: Record<ImageTask['format'], { mime: string; ext: string }> = {
  webp: { mime: 'image/webp', ext: 'webp' },
  avif: { mime: 'image/avif', ext: 'avif' },
  jpeg: { mime: 'image/jpeg', ext: 'jpg' },
  png: { mime: 'image/png', ext: 'png' },
};

/** `input`: bytes (benchmarks, small inputs) or a file path (storage inputs, see image-input.ts). */
export function transformer(task: Pick<ImageTask, 'format' | 'size' | 'limits'>, input: Uint8Array | string): Sharp {
  if (sharp.concurrency() !== task.limits.sharpConcurrency) sharp.concurrency(task.limits.sharpConcurrency);
  const opts: SharpOptions = {
    limitInputPixels: task.limits.maxPixels,
    failOn: task.limits.failOn,
    autoOrient: true,
    // Keep animation where the output format has it (WebP); others take the first frame.
    animated: task.format === 'webp',
    sequentialRead: true,
  };
  let img = sharp(input, opts);
  if (task.size !== undefined) img = img.resize({ width: task.size, height: task.size, fit: 'inside', withoutEnlargement: true });
  switch (task.format) {
    case 'webp':
      img = img.webp({ quality: 80, effort: 4 });
      break;
    case 'avif':
      // effort 2: AVIF at the default effort (4) costs several times the CPU for a few % in size.
      img = img.avif({ quality: 50, effort: 2 });
      break;
    case 'jpeg':
      img = img.flatten({ background: '#ffffff' }).jpeg({ quality: 82 });
      break;
    case 'png':
      img = img.png({ compressionLevel: 6 });
      break;
  }
  return img.timeout({ seconds: Math.max(1, Math.ceil(task.limits.timeoutMs / 1000)) });
}

function dims(info: OutputInfo | undefined): Pick<TaskOutput, 'width' | 'height' | 'frames'> {
  if (!info) return {};
  const frames = info.pages ?? 1;
  return { width: info.width, height: info.pageHeight ?? Math.round(info.height / frames), frames };
}

export function imageError(err: unknown): ErrorData {
  if (isSluiceError(err)) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(message)) return { code: 'IMAGE_TOO_LARGE', message };
  if (/^timeout/i.test(message) || (err as { name?: string } | null)?.name === 'TimeoutError') return { code: 'JOB_TIMEOUT', message };
  if ((err as { code?: string } | null)?.code?.startsWith('ERR_')) return { code: 'INTERNAL', message };
  // Everything else libvips says is about the input: unsupported, corrupt, truncated.
  return { code: 'IMAGE_INVALID', message };
}

export default function image(task: ImageTask): Promise<TaskResult> {
  return runImageTask(task, 'bytes' in task.input ? undefined : workerStorage(task.storage));
}

/** One image task against `storage` (the worker's own client; tests pass theirs). */
export async function runImageTask(task: ImageTask, storage: Storage | undefined): Promise<TaskResult> {
  const signal = AbortSignal.timeout(task.limits.timeoutMs);
  try {
    if ('bytes' in task.input) {
      const { data, info } = await transformer(task, task.input.bytes).toBuffer({ resolveWithObject: true });
      const output: TaskOutput = {
        size: data.byteLength,
        sha256: createHash('sha256').update(data).digest('hex'),
        ...MIME[task.format],
        ...dims(info),
      };
      if (task.outputKey === undefined) return { ok: true, output, bytes: move(data) as Uint8Array };
      return { ok: false, error: { code: 'INTERNAL', message: 'bytes input with an output key is not supported' } };
    }
    if (task.outputKey === undefined || !storage) return { ok: false, error: { code: 'INTERNAL', message: 'storage input needs an output key' } };
    // A path, not a stream: sharp would gather a stream whole in memory first (image-input.ts).
    const input = await openImageInput(storage, task.input.key, { dir: task.spoolDir ?? tmpdir(), signal });
    try {
      const img = transformer(task, input.file);
      let info: OutputInfo | undefined;
      img.once('info', (i: OutputInfo) => (info = i));
      const sum = digest();
      const outputKey = task.outputKey;
      await pipeline(img, sum.stage, async (body: AsyncIterable<Uint8Array>) => {
        await storage.put(outputKey, body, { contentType: MIME[task.format].mime, signal });
      });
      const { size, sha256 } = sum.result();
      return { ok: true, output: { size, sha256, ...MIME[task.format], ...dims(info), inputSize: input.size } };
    } finally {
      await input.release();
    }
  } catch (err) {
    // The time limit aborts storage reads and writes as well as sharp: whichever noticed first, it is a timeout.
    if (signal.aborted) return { ok: false, error: { code: 'JOB_TIMEOUT', message: `The image job exceeded its ${task.limits.timeoutMs} ms time limit` } };
    return { ok: false, error: imageError(err) };
  }
}
