// The manifest: one JSON document per file, written after every byte of the
// original was validated and stored. Its presence is the commit: S3 consumers
// key on `<prefix>/<tenant>/<id>/manifest.json` (docs/manifest.md), and the
// JSON Schema in docs/manifest.schema.json is generated from this zod schema
// by `npm run gen:schema`.

import { z } from 'zod';

export const MANIFEST_VERSION = 1;

export const fileTypeSchema = z.object({
  mime: z.string().describe('MIME type decided from the bytes'),
  ext: z.string().describe('Canonical extension for that type'),
});

// --- processing jobs (docs/jobs.md) ---
export const JOB_NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

export const variantSchema = z
  .object({
    key: z.string().describe('Storage key of the output, beside the original: <prefix>/<tenant>/<id>/variants/<job>'),
    size: z.number().int().nonnegative().describe('Size of the output in bytes'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 of the output, lowercase hex (its ETag)'),
    type: fileTypeSchema,
    width: z.number().int().positive().optional().describe('Image outputs: width in pixels'),
    height: z.number().int().positive().optional().describe('Image outputs: height in pixels (of one frame)'),
    frames: z.number().int().positive().optional().describe('Image outputs: frames (more than 1 when animated)'),
    compression: z
      .object({
        algorithm: z.enum(['gzip', 'brotli', 'zstd']),
        level: z.number().int(),
        inputSize: z.number().int().nonnegative(),
        outputSize: z.number().int().nonnegative(),
        ratio: z.number().nonnegative().describe('outputSize / inputSize (0 for an empty input)'),
      })
      .optional()
      .describe('Compression outputs: algorithm, level and sizes'),
  })
  .describe('One job output');

export const jobSchema = z
  .object({
    state: z.enum(['pending', 'running', 'done', 'failed', 'skipped']).describe('pending → running → done | failed; skipped when the job does not apply'),
    attempts: z.number().int().nonnegative().describe('Attempts started so far (a crash mid-job counts)'),
    updatedAt: z.iso.datetime(),
    error: z.object({ code: z.string(), message: z.string() }).optional().describe('Why the job failed (its last error while retrying)'),
    reason: z.string().optional().describe('Why the job was skipped'),
    output: variantSchema.optional(),
  })
  .describe('State of one processing job');

export const webhookSchema = z
  .object({
    state: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int().nonnegative(),
    deliveredAt: z.iso.datetime().optional(),
    lastError: z.string().optional(),
  })
  .describe('Completion webhook delivery');

export const manifestSchema = z
  .object({
    version: z.literal(MANIFEST_VERSION).describe('Schema version; bumped only on incompatible change'),
    id: z.string().describe('File id (UUIDv7, time-ordered)'),
    tenant: z.string().describe('Owning tenant'),
    name: z.string().describe('Sanitised original file name'),
    path: z
      .string()
      .max(1024)
      .optional()
      .describe("Relative path the client gave (e.g. photos/2024/a.jpg): '/'-separated, NFC, no empty, '.' or '..' segment, not absolute, no control characters; defaults to name. Absent in manifests written before paths existed (read it as name)"),
    size: z.number().int().nonnegative().describe('Size of the original in bytes'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 of the original, lowercase hex'),
    type: fileTypeSchema,
    declaredType: z.string().optional().describe('Content-Type the client declared, if any'),
    createdAt: z.iso.datetime().describe('Commit time, ISO 8601 UTC'),
    original: z.object({
      key: z.string().describe('Storage key of the original bytes'),
    }),
    jobs: z.record(z.string().regex(JOB_NAME_RE), jobSchema).optional().describe('Processing jobs by name'),
    webhook: webhookSchema.optional(),
  })
  .describe('sluice file manifest');

export type Manifest = z.infer<typeof manifestSchema>;
export type JobRecord = z.infer<typeof jobSchema>;
export type Variant = z.infer<typeof variantSchema>;
export type WebhookRecord = z.infer<typeof webhookSchema>;

export function parseManifest(json: unknown): Manifest {
  return manifestSchema.parse(json);
}

export function manifestJsonSchema(): unknown {
  return z.toJSONSchema(manifestSchema, { target: 'draft-2020-12' });
}
