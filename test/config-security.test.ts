// Security settings: no auth off loopback refuses to start with one clear
// line; secrets come from the environment or files named by it and are never
// echoed back; malformed auth settings stop start-up naming the variable.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { apiKey, JWT_SECRET } from './helpers/auth.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-config-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const jwt = { SLUICE_AUTH_JWT_SECRET: JWT_SECRET, SLUICE_AUTH_ISSUER: 'i', SLUICE_AUTH_AUDIENCE: 'a' };

test('without auth, loopback hosts start (open) and any other host is refused', () => {
  for (const HOST of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) assert.equal(loadConfig({ HOST }).security.authEnabled, false);
  for (const HOST of ['0.0.0.0', '::', '10.0.0.5', 'files.example.com']) {
    assert.throws(() => loadConfig({ HOST }), (e: Error) => e instanceof ConfigError && /^invalid HOST: refusing to listen on .* without authentication/.test(e.message) && !e.message.includes('\n'));
    assert.equal(loadConfig({ HOST, ...jwt }).security.authEnabled, true);
  }
});

test('the server process refuses to start with one line on stderr and exit code 2', () => {
  const r = spawnSync(process.execPath, ['src/server.ts'], { env: { PATH: process.env.PATH ?? '', HOST: '0.0.0.0', PORT: '0' }, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^sluice: invalid HOST: refusing to listen on 0\.0\.0\.0 without authentication/);
});

test('secrets can come from files named by *_FILE (trailing newline dropped), not both ways at once', async () => {
  const secretFile = path.join(dir, 'jwt');
  await writeFile(secretFile, `${JWT_SECRET}\n`);
  const keysFile = path.join(dir, 'keys.json');
  await writeFile(keysFile, JSON.stringify([apiKey('ci', 'acme', ['files:read']).entry]));
  const c = loadConfig({ SLUICE_AUTH_JWT_SECRET_FILE: secretFile, SLUICE_AUTH_ISSUER: 'i', SLUICE_AUTH_AUDIENCE: 'a', SLUICE_AUTH_API_KEYS_FILE: keysFile });
  assert.equal(c.security.jwt.secret, JWT_SECRET);
  assert.equal(c.security.apiKeys[0]!.id, 'ci');
  assert.throws(() => loadConfig({ ...jwt, SLUICE_AUTH_JWT_SECRET_FILE: secretFile }), /set SLUICE_AUTH_JWT_SECRET or SLUICE_AUTH_JWT_SECRET_FILE, not both/);
  assert.throws(() => loadConfig({ SLUICE_LINK_SECRET_FILE: path.join(dir, 'missing') }), /invalid SLUICE_LINK_SECRET_FILE: cannot read .*ENOENT/);
});

test('a bad secret is named but never echoed', () => {
  const short = 'tooshort-but-secret';
  assert.throws(
    () => loadConfig({ ...jwt, SLUICE_AUTH_JWT_SECRET: short }),
    (e: Error) => /invalid SLUICE_AUTH_JWT_SECRET/.test(e.message) && !e.message.includes(short),
  );
});

test('JWTs need an issuer and an audience; algorithms are from a fixed list; API keys are validated', () => {
  assert.throws(() => loadConfig({ SLUICE_AUTH_JWT_SECRET: JWT_SECRET }), /SLUICE_AUTH_ISSUER\/SLUICE_AUTH_AUDIENCE/);
  assert.throws(() => loadConfig({ ...jwt, SLUICE_AUTH_JWT_ALGORITHMS: 'none' }), /SLUICE_AUTH_JWT_ALGORITHMS/);
  assert.throws(() => loadConfig({ ...jwt, SLUICE_AUTH_JWT_ALGORITHMS: 'HS256' }), /SLUICE_AUTH_JWT_ALGORITHMS/);
  assert.throws(() => loadConfig({ SLUICE_AUTH_API_KEYS: 'nope' }), /invalid SLUICE_AUTH_API_KEYS: not JSON/);
  const entry = apiKey('ci', 'acme', ['files:read']).entry;
  assert.throws(() => loadConfig({ SLUICE_AUTH_API_KEYS: JSON.stringify([{ ...entry, sha256: 'plaintext-key' }]) }), /SLUICE_AUTH_API_KEYS: 0\.sha256/);
  assert.throws(() => loadConfig({ SLUICE_AUTH_API_KEYS: JSON.stringify([entry, entry]) }), /duplicate id/);
  assert.throws(() => loadConfig({ SLUICE_AUTH_API_KEYS: JSON.stringify([{ ...entry, tenant: '../x' }]) }), /0\.tenant/);
});
