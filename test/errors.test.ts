// Every error code the service can answer is documented in README's error table
// (as Fastify does for its own codes), and the catalogue is well-formed.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { errorCatalogue } from '../src/errors.ts';

it('every error code is in README with its status', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.match(readme, new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${spec.status}\\s*\\|`), `README lacks a row for ${code} (${spec.status})`);
  }
});

it('codes are UPPER_SNAKE and statuses are HTTP error statuses', () => {
  for (const [code, spec] of Object.entries(errorCatalogue)) {
    assert.match(code, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(spec.status >= 400 && spec.status < 600, code);
  }
});
