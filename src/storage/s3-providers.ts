// What each S3 provider accepts, as defaults for SLUICE_S3_PROVIDER. Every
// field can still be overridden by its own variable (SLUICE_S3_CHECKSUM,
// SLUICE_S3_MAX_PARTS, SLUICE_S3_FORCE_PATH_STYLE); README's "S3 providers"
// says where each figure comes from.

export const S3_PROVIDERS = ['aws', 'minio', 'r2', 'b2', 'gcs', 'scaleway', 'generic'] as const;
export type S3Provider = (typeof S3_PROVIDERS)[number];

export interface S3ProviderProfile {
  /** when_supported: the SDK's CRC32 on every request; when_required: only where an API demands one. */
  checksum: 'when_supported' | 'when_required';
  /** Most parts one multipart upload may have. */
  maxParts: number;
  /** Smallest part but the last. */
  minPartSize: number;
  /** Largest single part. */
  maxPartSize: number;
  /** Every part but the last must have the same size (R2). */
  equalParts: boolean;
  forcePathStyle: boolean;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const S3_RULES = { maxParts: 10_000, minPartSize: 5 * MiB, maxPartSize: 5 * GiB, equalParts: false, forcePathStyle: false } as const;

export const S3_PROVIDER_PROFILES: Readonly<Record<S3Provider, Readonly<S3ProviderProfile>>> = {
  aws: { ...S3_RULES, checksum: 'when_supported' },
  minio: { ...S3_RULES, checksum: 'when_supported', forcePathStyle: true },
  // R2 refuses a multipart upload whose parts (but the last) differ in size.
  r2: { ...S3_RULES, checksum: 'when_required', equalParts: true },
  b2: { ...S3_RULES, checksum: 'when_required' },
  // GCS's XML API takes S3 multipart uploads but not the SDK's x-amz-checksum-* headers.
  gcs: { ...S3_RULES, checksum: 'when_required' },
  // Scaleway Object Storage allows 1,000 parts per upload, not 10,000.
  scaleway: { ...S3_RULES, checksum: 'when_required', maxParts: 1_000 },
  generic: { ...S3_RULES, checksum: 'when_supported' },
};
