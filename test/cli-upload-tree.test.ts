// `sluice upload DIR` stores every file of a nested tree (empty files, unicode
// and spaces in names, all three integrity modes) with the right bytes, keeps
// the token out of its output, and a re-run skips everything.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, sha256 } from './helpers/http.ts';
import { fileLines, listAll, runCli, summaryOf, tempDir, writeTree } from './helpers/cli.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';
const TOKEN = 'tok-3b7f0c1e-never-print-me';

describe(`sluice upload of a tree (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  // Text with a fixed start: random base64 can begin with magic bytes ("MZ" is a DOS executable) and be refused.
  const text = (n: number) => `text\n${randomBytes(Math.ceil(n * 0.75)).toString('base64')}`.slice(0, n);
  const tree: Record<string, string> = {
    'top.txt': 'top level\n',
    'empty.txt': '',
    'nested/deeper/deepest/leaf.csv': 'a,b\n1,2\n',
    'nested/also empty.txt': '',
    'with space/file with spaces.txt': 'spaces\n',
    'ünïcödé/日本語 ファイル.txt': 'こんにちは\n',
    'ünïcödé/émoji 🎉.md': '# party\n',
    // 100 KiB: hashed first, sent with Content-Digest (the flags below set the thresholds).
    'sizes/medium.txt': text(100 * 1024),
    // 6 MiB: over the S3 part size, hashed in the same pass and checked against the answer.
    'sizes/large.txt': text(6 * 1024 * 1024),
  };

  before(async () => {
    srv = await startServer({ backend, label: 'cli-tree' });
    dir = await tempDir('tree');
    await writeTree(path.join(dir, 'src'), tree);
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('uploads every file, verified, and a re-run skips them all', async () => {
    const args = ['upload', 'src', '--server', srv.url, '--json', '--buffer-max', '64KiB', '--hash-first-max', '1MiB', '-c', '3'];
    const run = await runCli([...args, '--state', 'src/.sluice-state.ndjson'], { cwd: dir, env: { SLUICE_TOKEN: TOKEN } });
    assert.equal(run.code, 0, run.stderr);
    const results = fileLines(run);
    assert.equal(results.length, Object.keys(tree).length);
    assert.ok(results.every((r) => r.status === 'ok'), JSON.stringify(results));
    assert.deepEqual(results.map((r) => r.path).sort(), Object.keys(tree).map((p) => path.join('src', p)).sort());
    const summary = summaryOf(run)!;
    assert.equal(summary.ok, Object.keys(tree).length);
    assert.equal(summary.failed, 0);
    assert.equal(summary.bytes, Object.values(tree).reduce((n, s) => n + Buffer.byteLength(s), 0));

    // What the server holds: one file per local file, same name, size and sha256, bytes that read back equal.
    const listed = await listAll(srv.url);
    assert.equal(listed.length, Object.keys(tree).length);
    for (const [rel, content] of Object.entries(tree)) {
      const r = results.find((x) => x.path === path.join('src', rel))!;
      const f = listed.find((x) => x.id === r.id);
      assert.ok(f, `${rel} is listed`);
      assert.equal(f.name, path.basename(rel));
      assert.equal(f.size, Buffer.byteLength(content));
      assert.equal(f.sha256, sha256(Buffer.from(content)));
      const got = await call(`${srv.url}/v1/files/${f.id}/content`);
      assert.equal(sha256(got.body), f.sha256);
    }
    assert.equal((await leftovers(srv)).pending, 0);
    assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN), 'the token is never printed');

    // The journal, kept inside the uploaded tree here, is never uploaded itself.
    const again = await runCli([...args, '--state', 'src/.sluice-state.ndjson'], { cwd: dir, env: { SLUICE_TOKEN: TOKEN } });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(fileLines(again).every((r) => r.status === 'skipped' && r.reason === 'state'));
    assert.equal((await listAll(srv.url)).length, Object.keys(tree).length, 'nothing uploaded twice');
  });
});
