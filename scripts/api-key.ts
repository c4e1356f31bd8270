// `npm run api-key -- --id <name> --tenant <tenant> --scopes files:read,files:write`
// Prints a new API key (shown once: only its hash is kept) and the entry to
// add to the SLUICE_AUTH_API_KEYS JSON array.
//
// `npm run api-key -- --s3 --tenant <tenant> [--scopes ...]` (with SLUICE_S3API_SECRET set, or
// SLUICE_S3API_SECRET_FILE) prints an access key id and secret for the S3 endpoint and the entry
// to add to SLUICE_S3API_ACCESS_KEYS. The secret is derived from the server secret, never stored.

import { parseArgs } from 'node:util';
import { SCOPES, type Scope } from '../src/core/auth/scopes.ts';
import { generateApiKey } from '../src/core/auth/api-keys.ts';
import { generateS3AccessKey } from '../src/core/auth/s3-access-keys.ts';
import { isTenant } from '../src/core/keys.ts';
import { loadConfig } from '../src/config.ts';

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    tenant: { type: 'string' },
    scopes: { type: 'string', default: 'files:read,files:write' },
    s3: { type: 'boolean', default: false },
  },
});
const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const fail = (msg: string): never => {
  process.stderr.write(
    `api-key: ${msg}\nusage: npm run api-key -- --id <name> --tenant <tenant> [--scopes ${SCOPES.join(',')}]\n` +
      `       npm run api-key -- --s3 --tenant <tenant> [--scopes ...]   (needs SLUICE_S3API_SECRET)\n`,
  );
  process.exit(2);
};
if (!values.s3 && (!values.id || !/^[A-Za-z0-9._-]{1,64}$/.test(values.id))) fail('--id: 1-64 letters, digits, . _ -');
if (!values.tenant || !isTenant(values.tenant)) fail('--tenant: lowercase letters, digits and dashes');
const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
if (scopes.length === 0 || unknown.length > 0) fail(`--scopes: unknown ${unknown.join(', ') || '(none given)'}`);

if (values.s3) {
  // The server secret is read the way the server reads it (config.ts), so both derive the same secrets.
  // An empty key list stands in for the server's, which this command is about to extend.
  const config = loadConfig({ ...process.env, SLUICE_S3API_ACCESS_KEYS: process.env.SLUICE_S3API_ACCESS_KEYS ?? '[]' });
  const secret = config.s3Api?.secret;
  if (secret === undefined) fail('--s3: set SLUICE_S3API_SECRET (or SLUICE_S3API_SECRET_FILE) to the server secret');
  const k = generateS3AccessKey(secret!, { tenant: values.tenant!, scopes: scopes as Scope[] });
  process.stdout.write(
    `access key id:     ${k.accessKeyId}\nsecret access key: ${k.secretAccessKey}\n(the secret is derived from SLUICE_S3API_SECRET; keep it like a password)\n\n` +
      `entry for SLUICE_S3API_ACCESS_KEYS:\n  ${JSON.stringify(k.entry)}\n`,
  );
} else {
  const { key, entry } = generateApiKey({ id: values.id!, tenant: values.tenant!, scopes: scopes as Scope[] });
  process.stdout.write(`key (give it to the client; it is not stored anywhere):\n  ${key}\n\nentry for SLUICE_AUTH_API_KEYS:\n  ${JSON.stringify(entry)}\n`);
}
