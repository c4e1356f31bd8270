// A multi-file request is one commit: a process killed at any step of it
// leaves either every file of the request visible or none, and the reaper
// removes what a killed request left. The child (held-write-child.ts) holds
// the named storage write forever; the test SIGKILLs it right there.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import { listFiles } from '../src/core/files.ts';
import { sweepOnce } from '../src/core/reaper.ts';
import { createStorage } from '../src/storage/index.ts';
import type { Storage } from '../src/storage/storage.ts';
import { multipartBody } from './helpers/http.ts';
import { backends, s3Env, type Backend } from './helpers/server.ts';

const CHILD = fileURLToPath(new URL('./helpers/held-write-child.ts', import.meta.url));
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const FILES = 3;

async function allKeys(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix: `${prefix}/`, startAfter });
    keys.push(...page.objects.map((o) => o.key));
    if (!page.truncated || page.objects.length === 0) return keys;
    startAfter = page.objects.at(-1)!.key;
  }
}

async function envFor(backend: Backend): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const base = { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', SLUICE_JOBS_POOL_SIZE: '0', SLUICE_REAPER_INTERVAL_MS: '0' };
  if (backend === 's3') return { env: { ...base, ...(await s3Env('commit-crash')).env }, cleanup: async () => {} };
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-commit-crash-'));
  return { env: { ...base, SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: dir }, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Run one request in a child that holds `hold`; SIGKILL it there. Resolves with the HTTP status, or 0 when killed first. */
async function killedAt(env: Record<string, string>, hold: string): Promise<number> {
  const child = spawn(process.execPath, [CHILD], { env: { PATH: process.env.PATH ?? '', ...env, TEST_HOLD: hold }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines = createInterface({ input: child.stdout! });
  let onHeld: () => void = () => {};
  const heldNow = new Promise<'held'>((resolve) => (onHeld = () => resolve('held')));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', () => reject(new Error('child exited before listening')));
    lines.on('line', (line) => {
      const j = JSON.parse(line) as { listening?: number; held?: string };
      if (j.listening) resolve(j.listening);
      if (j.held) onHeld();
    });
  });
  const form = multipartBody(Array.from({ length: FILES }, (_, i) => ({ name: `f${i}`, filename: `f${i}.txt`, contentType: 'text/plain', data: `file ${i}\n` })));
  const answer = fetch(`http://127.0.0.1:${port}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } }).then(
    (r) => r.status,
    () => 0,
  );
  const first = await Promise.race([heldNow, answer]);
  child.kill('SIGKILL');
  await exited;
  return first === 'held' ? 0 : await answer;
}

for (const backend of backends()) {
  describe(`a multi-file request killed mid-commit on ${backend}`, () => {
    // Every write of the commit, in order: the k-th manifest, and the step that makes the request visible.
    const steps = [...Array.from({ length: FILES }, (_, i) => `put:manifest.json:${i + 1}`), 'delete:_system/commits/:1', 'put:_system/commits/:1'];
    for (const hold of steps) {
      it(`leaves all or none of its files visible when killed at ${hold}, and the reaper removes the rest`, async () => {
        const { env, cleanup } = await envFor(backend);
        try {
          const status = await killedAt(env, hold);
          const config = loadConfig(env);
          const storage = await createStorage(config);
          try {
            const visible = (await listFiles(storage, config.keyPrefix, 'default', { limit: 100 })).files.length;
            if (status === 201) assert.equal(visible, FILES, 'a 201 request shows every file');
            else assert.equal(visible, 0, `killed at ${hold}: ${visible} of ${FILES} files of an unanswered request are visible`);
            // Later: the reaper, past the max age, leaves nothing of an unanswered request behind.
            await sweepOnce({ storage, keyPrefix: config.keyPrefix, maxAgeMs: 60_000, log: silent }, Date.now() + 120_000);
            const left = await allKeys(storage, config.keyPrefix);
            if (status === 201) assert.equal(left.filter((k) => k.endsWith('/manifest.json')).length, FILES);
            else assert.deepEqual(left, [], 'the reaper removed every object of the killed request');
          } finally {
            await storage.close();
          }
        } finally {
          await cleanup();
        }
      });
    }
  });
}
