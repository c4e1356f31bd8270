// Ctrl-C (SIGINT) stops a batch cleanly: in-flight uploads are aborted and
// leave nothing on the server, the summary is printed, the exit code is 130,
// the journal stays whole and the next run completes the batch.

import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listAll, runCli, spawnCli, summaryOf, tempDir, writeTree } from './helpers/cli.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

describe(`sluice upload, interrupted by Ctrl-C (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  before(async () => {
    srv = await startServer({ backend, label: 'cli-sigint' });
    dir = await tempDir('sigint');
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('Ctrl-C aborts in-flight uploads, prints the summary, exits 130; the next run completes', async () => {
    const cwd = path.join(dir, 'sigint');
    const names = Array.from({ length: 12 }, (_, i) => `big${i}.txt`);
    // 8 MiB each: multipart uploads on S3, so an abort has a pending upload to clean up.
    const body = 'x'.repeat(8 * 1024 * 1024);
    await writeTree(cwd, Object.fromEntries(names.map((n) => [`in/${n}`, body])));
    const args = ['upload', 'in', '--server', srv.url, '--json', '-c', '2'];
    const first = spawnCli(args, { cwd });
    await first.waitFor((l) => l.status === 'ok', 1);
    first.child.kill('SIGINT');
    const run = await first.done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /SIGINT: stopping/);
    const summary = summaryOf(run)!;
    assert.equal(summary.interrupted, true);
    assert.ok(Number(summary.ok) >= 1 && Number(summary.ok) < names.length);
    // Every journal line is whole JSON.
    const journal = await readFile(path.join(cwd, '.sluice-state.ndjson'), 'utf8');
    for (const line of journal.trim().split('\n')) JSON.parse(line);

    const second = await runCli(args, { cwd });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual((await listAll(srv.url)).map((f) => f.name).sort(), [...names].sort());
    // The aborted uploads left nothing behind: originals + manifests only, no pending multipart upload.
    // The server cleans an aborted upload up after the client's socket closes: wait for it, however long it takes.
    await until(async () => {
      const l = await leftovers(srv);
      return l.pending === 0 && l.keys.length === 2 * names.length;
    }, 'aborted uploads to be cleaned up').catch(() => {});
    const left = await leftovers(srv);
    assert.equal(left.pending, 0);
    assert.equal(left.keys.length, 2 * names.length);
  });
});
