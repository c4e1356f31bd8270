// `npm run api-key -- --id <name> --tenant <tenant> --scopes files:read,files:write`
// Prints a new API key (shown once: only its hash is kept) and the entry to
// add to the SLUICE_AUTH_API_KEYS JSON array.

import { parseArgs } from 'node:util';
import { SCOPES, type Scope } from '../src/core/auth/scopes.ts';
import { generateApiKey } from '../src/core/auth/api-keys.ts';
import { isTenant } from '../src/core/keys.ts';

const { values } = parseArgs({
  options: { id: { type: 'string' }, tenant: { type: 'string' }, scopes: { type: 'string', default: 'files:read,files:write' } },
});
const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const fail = (msg: string): never => {
  process.stderr.write(`api-key: ${msg}\nusage: npm run api-key -- --id <name> --tenant <tenant> [--scopes ${SCOPES.join(',')}]\n`);
  process.exit(2);
};
if (!values.id || !/^[A-Za-z0-9._-]{1,64}$/.test(values.id)) fail('--id: 1-64 letters, digits, . _ -');
if (!values.tenant || !isTenant(values.tenant)) fail('--tenant: lowercase letters, digits and dashes');
const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
if (scopes.length === 0 || unknown.length > 0) fail(`--scopes: unknown ${unknown.join(', ') || '(none given)'}`);

const { key, entry } = generateApiKey({ id: values.id!, tenant: values.tenant!, scopes: scopes as Scope[] });
process.stdout.write(`key (give it to the client; it is not stored anywhere):\n  ${key}\n\nentry for SLUICE_AUTH_API_KEYS:\n  ${JSON.stringify(entry)}\n`);
