// The built-in jobs a file can get, by name. Configured resize presets add
// their own names; config checks they do not collide with these.

/** Full-size conversions (auto-rotated, metadata stripped). */
export const CONVERT_JOBS = ['webp', 'avif', 'jpeg'] as const;
/** Compressed copies of the original, streamed storage to storage. */
export const COMPRESS_JOBS = ['gzip', 'brotli', 'zstd'] as const;
/** Output formats of a resize preset. */
export const PRESET_FORMATS = ['webp', 'avif', 'jpeg', 'png'] as const;

export type CompressAlgorithm = (typeof COMPRESS_JOBS)[number];
export type ImageFormat = (typeof PRESET_FORMATS)[number];

/** A resize job: fit inside size×size, never enlarged. */
export interface ImagePreset {
  name: string;
  size: number;
  format: ImageFormat;
}
