// Config is parsed once; a bad value stops the service with one line naming the variable.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

describe('config', () => {
  it('defaults: loopback, port 8080, fs under ./data', () => {
    const c = loadConfig({});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8080);
    assert.deepEqual(c.storage, { kind: 'fs', dataDir: './data' });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.limits));
  });

  it('setting a bucket switches to S3', () => {
    const c = loadConfig({ SLUICE_S3_BUCKET: 'media', SLUICE_S3_FORCE_PATH_STYLE: 'true', SLUICE_S3_ENDPOINT: 'http://127.0.0.1:9000' });
    assert.equal(c.storage.kind, 's3');
    assert.ok(c.storage.kind === 's3' && c.storage.s3.forcePathStyle);
  });

  it('each bad value is named', () => {
    for (const [name, value] of [['PORT', 'eighty'], ['SLUICE_MAX_FILE_BYTES', '-1'], ['SLUICE_S3_CHECKSUM', 'sometimes'], ['SLUICE_S3_PART_SIZE', '1024'], ['LOG_LEVEL', 'loud']]) {
      assert.throws(() => loadConfig({ [name!]: value }), (e: Error) => e instanceof ConfigError && e.message.includes(name!), name);
    }
    assert.throws(() => loadConfig({ SLUICE_STORAGE: 's3' }), /SLUICE_S3_BUCKET/);
    assert.throws(() => loadConfig({ SLUICE_S3_ACCESS_KEY_ID: 'only-half' }), /SLUICE_S3_SECRET_ACCESS_KEY/);
  });

  it('the server process exits 2 with one line on stderr for a bad variable', () => {
    const r = spawnSync(process.execPath, ['src/server.ts'], { env: { ...process.env, PORT: 'nope' }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^sluice: invalid PORT/);
  });
});

it('every config variable is documented in README', async () => {
  const { readFile } = await import('node:fs/promises');
  const { CONFIG_VARIABLES } = await import('../src/config.ts');
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  for (const v of CONFIG_VARIABLES) assert.match(readme, new RegExp(`\`${v}\``), `README lacks ${v}`);
});
