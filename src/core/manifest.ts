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

export const manifestSchema = z
  .object({
    version: z.literal(MANIFEST_VERSION).describe('Schema version; bumped only on incompatible change'),
    id: z.string().describe('File id (UUIDv7, time-ordered)'),
    tenant: z.string().describe('Owning tenant'),
    name: z.string().describe('Sanitised original file name'),
    size: z.number().int().nonnegative().describe('Size of the original in bytes'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 of the original, lowercase hex'),
    type: fileTypeSchema,
    declaredType: z.string().optional().describe('Content-Type the client declared, if any'),
    createdAt: z.iso.datetime().describe('Commit time, ISO 8601 UTC'),
    original: z.object({
      key: z.string().describe('Storage key of the original bytes'),
    }),
  })
  .describe('sluice file manifest');

export type Manifest = z.infer<typeof manifestSchema>;

export function parseManifest(json: unknown): Manifest {
  return manifestSchema.parse(json);
}

export function manifestJsonSchema(): unknown {
  return z.toJSONSchema(manifestSchema, { target: 'draft-2020-12' });
}
