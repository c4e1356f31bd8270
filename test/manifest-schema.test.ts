import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { renderManifestSchema } from '../scripts/gen-manifest-schema.ts';

it('docs/manifest.schema.json matches the zod schema (run `npm run gen:schema` after changing it)', async () => {
  const committed = await readFile(new URL('../docs/manifest.schema.json', import.meta.url), 'utf8');
  assert.equal(committed, renderManifestSchema());
});
