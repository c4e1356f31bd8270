// From a job spec and a file's manifest to the plain task a worker runs, and
// from the worker's plain result back to the manifest's variant record.
// Output keys depend only on (file, job name), so a retried or duplicated job
// overwrites the same object: jobs are idempotent.

import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import type { JobSpec } from '../core/jobs.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest, Variant } from '../core/manifest.ts';
import type { CompressTask, ImageTask, TaskOutput } from '../../workers/tasks.ts';

// Workers sit beside src/ both in the source tree (.ts, type stripping) and in dist/ (.js, compiled).
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const IMAGE_WORKER = fileURLToPath(new URL(`../../workers/image${EXT}`, import.meta.url));
export const COMPRESS_WORKER = fileURLToPath(new URL(`../../workers/compress${EXT}`, import.meta.url));

/**
 * Levels chosen for throughput (docs/jobs.md has the measured MB/s): gzip 6
 * is zlib's default; brotli 5 instead of 11 (quality 11 runs at a few MB/s);
 * zstd 3 is zstd's default.
 */
export const COMPRESS_LEVELS = { gzip: 6, brotli: 5, zstd: 3 } as const;

export type WorkerTask = { filename: string; task: ImageTask } | { filename: string; task: CompressTask };

export function buildTask(spec: JobSpec, m: Manifest, config: Readonly<Config>): WorkerTask {
  const outputKey = fileKeys(config.keyPrefix, m.tenant, m.id).variant(spec.name);
  if (spec.kind === 'compress') {
    return {
      filename: COMPRESS_WORKER,
      task: {
        storage: config.storage,
        inputKey: m.original.key,
        outputKey,
        algorithm: spec.algorithm,
        level: COMPRESS_LEVELS[spec.algorithm],
        timeoutMs: config.jobs.timeoutMs,
      },
    };
  }
  return {
    filename: IMAGE_WORKER,
    task: {
      storage: config.storage,
      input: { key: m.original.key },
      outputKey,
      format: spec.format,
      ...(spec.size !== undefined ? { size: spec.size } : {}),
      limits: {
        maxPixels: config.jobs.image.maxPixels,
        failOn: config.jobs.image.failOn,
        sharpConcurrency: config.jobs.image.sharpConcurrency,
        timeoutMs: config.jobs.timeoutMs,
      },
    },
  };
}

export function toVariant(spec: JobSpec, key: string, out: TaskOutput): Variant {
  const v: Variant = { key, size: out.size, sha256: out.sha256, type: { mime: out.mime, ext: out.ext } };
  if (out.width !== undefined) v.width = out.width;
  if (out.height !== undefined) v.height = out.height;
  if (out.frames !== undefined) v.frames = out.frames;
  if (spec.kind === 'compress') {
    const inputSize = out.inputSize ?? 0;
    v.compression = {
      algorithm: spec.algorithm,
      level: COMPRESS_LEVELS[spec.algorithm],
      inputSize,
      outputSize: out.size,
      ratio: inputSize === 0 ? 0 : Math.round((out.size / inputSize) * 10_000) / 10_000,
    };
  }
  return v;
}
