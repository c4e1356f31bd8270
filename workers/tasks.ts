// The worker boundary: plain data in, plain data out. Tasks and results are
// structured-cloned between threads (byte arrays are transferred, not copied),
// so nothing here may be a class instance; errors cross as { code, message }.

import type { Config } from '../src/config.ts';
import type { ErrorData } from '../src/errors.ts';
import type { CompressAlgorithm, ImageFormat } from '../src/core/jobs.ts';

/** Where a worker opens its own storage client (one per worker thread, reused). */
export type StorageSpec = Config['storage'];

export interface ImageLimits {
  /** sharp limitInputPixels: width × height × frames of the decoded input. */
  maxPixels: number;
  failOn: 'none' | 'truncated' | 'error' | 'warning';
  /** libvips threads for this task (sharp.concurrency). */
  sharpConcurrency: number;
  /** sharp's own timeout; the pool also aborts the thread a little later as a backstop. */
  timeoutMs: number;
}

export interface ImageTask {
  storage: StorageSpec;
  /** From storage (the service), or bytes transferred in (benchmarks, small inputs). */
  input: { key: string } | { bytes: Uint8Array };
  /** Write the output here; absent: return its bytes (transferred). */
  outputKey?: string;
  format: ImageFormat;
  /** Where an S3 original is spooled for libvips (image-input.ts); default the OS temp dir. */
  spoolDir?: string;
  /** Fit inside size × size, never enlarged; absent: full size. */
  size?: number;
  limits: ImageLimits;
}

export interface CompressTask {
  storage: StorageSpec;
  inputKey: string;
  outputKey: string;
  algorithm: CompressAlgorithm;
  level: number;
  timeoutMs: number;
}

export interface TaskOutput {
  size: number;
  sha256: string;
  mime: string;
  ext: string;
  width?: number;
  height?: number;
  frames?: number;
  inputSize?: number;
}

export type TaskResult = { ok: true; output: TaskOutput; bytes?: Uint8Array } | { ok: false; error: ErrorData };
