// Small files go several per request (POST /v1/files multipart) and large
// ones alone (PUT), sized from GET /v1/limits: fewer requests, the same
// stored files (paths, sha256), and the journal records each file, so a
// re-run skips them all. An explicit --batch-max 0 sends one file per request.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, sha256 } from './helpers/http.ts';
import { fileLines, listAll, runCli, tempDir, writeTree } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

/** Committed uploads per route, from the service's own counter. */
async function completed(url: string): Promise<Record<string, number>> {
  const text = (await call(`${url}/metrics`)).body.toString();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sluice_uploads_completed_total\{route="([^"]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe(`sluice upload batches small files (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  const tree: Record<string, Buffer> = {};
  // Text with a fixed start: random base64 can begin with magic bytes ("MZ" is a DOS executable) and be refused.
  for (let i = 0; i < 45; i++) tree[`small/${i % 3}/f${i}.txt`] = Buffer.from(`text ${i}\n${randomBytes(200 + i * 50).toString('base64')}`);
  tree['big/large.txt'] = Buffer.from(`text\n${randomBytes(600 * 1024).toString('base64')}`); // over --batch-max

  before(async () => {
    srv = await startServer({ backend, label: 'cli-batch', env: { SLUICE_MAX_FILES: '10' } });
    dir = await tempDir('batch');
    await writeTree(path.join(dir, 'data'), tree);
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the server says how much one request may carry', async () => {
    const l = (await call(`${srv.url}/v1/limits`)).json<{ filesPerRequest: number; requestBytes: number; fileBytes: number; uploadConcurrency: number }>();
    assert.equal(l.filesPerRequest, 10);
    assert.equal(l.requestBytes, srv.config.limits.requestBytes);
    assert.ok(l.uploadConcurrency >= 1 && l.uploadConcurrency <= 32);
  });

  it('sends 45 small files in batches of at most 10 and the large one alone, each stored under its path', async () => {
    const run = await runCli(['upload', 'data', '--server', srv.url, '--json', '--state', 'state.ndjson'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const lines = fileLines(run);
    assert.equal(lines.length, Object.keys(tree).length);
    assert.ok(lines.every((l) => l.status === 'ok'), JSON.stringify(lines.filter((l) => l.status !== 'ok')));
    const counts = await completed(srv.url);
    assert.equal(counts['/v1/files:name'] ?? counts['/v1/files/:name'], 1, JSON.stringify(counts));
    assert.ok(counts['/v1/files']! >= 5 && counts['/v1/files']! < 45, `multipart requests: ${counts['/v1/files']}`);

    const listed = await listAll(srv.url);
    assert.deepEqual(listed.map((f) => f.path).sort(), Object.keys(tree).map((p) => `data/${p}`).sort());
    for (const f of listed) assert.equal(f.sha256, sha256(tree[f.path.slice('data/'.length)]!));

    const again = await runCli(['upload', 'data', '--server', srv.url, '--json', '--state', 'state.ndjson'], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(fileLines(again).every((l) => l.status === 'skipped' && l.reason === 'state'), 'the journal holds every batched file');
  });

  it('--batch-max 0 sends one file per request', async () => {
    const before = (await completed(srv.url))['/v1/files/:name'] ?? 0;
    const run = await runCli(['upload', 'data/small/0', '--server', srv.url, '--json', '--no-state', '--batch-max', '0'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await completed(srv.url))['/v1/files/:name']! - before, 15);
  });
});
