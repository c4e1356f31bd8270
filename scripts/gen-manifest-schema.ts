// Writes docs/manifest.schema.json from the manifest's zod schema, so the
// published JSON Schema can never drift from what the service validates.
// `npm run gen:schema`; test/manifest-schema.test.ts fails when it is stale.

import { writeFile } from 'node:fs/promises';
import { manifestJsonSchema } from '../src/core/manifest.ts';

export function renderManifestSchema(): string {
  return JSON.stringify(manifestJsonSchema(), null, 2) + '\n';
}

if (import.meta.main) {
  await writeFile(new URL('../docs/manifest.schema.json', import.meta.url), renderManifestSchema());
  console.log('wrote docs/manifest.schema.json');
}
