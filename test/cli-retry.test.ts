// A service that answers 503 (with Retry-After) and then recovers: the CLI
// waits, retries and completes every file, exit code 0, nothing duplicated.
// A service that stays unreachable fails the run once, up front.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { fileLines, listAll, runCli, tempDir, writeTree } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';
const FILES = 6;
const REFUSALS = 8;

describe(`sluice upload through a service that is briefly unavailable (${backend})`, () => {
  let srv: TestServer;
  let proxy: FaultProxy;
  let dir: string;
  let refusedAt: number[] = [];
  before(async () => {
    srv = await startServer({ backend, label: 'cli-retry' });
    // The first REFUSALS uploads get a sluice-shaped 503 BUSY with Retry-After: 1.
    proxy = await startFaultProxy(srv.url, (r) => {
      if (r.method === 'PUT' && refusedAt.length < REFUSALS) {
        refusedAt.push(Date.now());
        return {
          kind: 'answer',
          status: 503,
          headers: { 'retry-after': '1', 'content-type': 'application/json' },
          body: JSON.stringify({ error: { code: 'BUSY', message: 'The service is at capacity; retry later', requestId: `r${r.n}` } }),
        };
      }
      return { kind: 'forward' };
    });
    dir = await tempDir('retry');
    await writeTree(dir, Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`in/f${i}.txt`, `file ${i}\n`])));
  });
  after(async () => {
    await proxy.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries after Retry-After and completes', async () => {
    refusedAt = [];
    const started = Date.now();
    // One file per request (--batch-max 0): this is about per-file retries; batches are test/cli-batch.test.ts.
    const run = await runCli(['upload', 'in', '--server', proxy.url, '--json', '-c', '2', '--retries', '6', '--batch-max', '0'], { cwd: dir });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const results = fileLines(run);
    assert.equal(results.length, FILES);
    assert.ok(results.every((r) => r.status === 'ok'));
    assert.equal(refusedAt.length, REFUSALS);
    assert.ok(results.some((r) => Number(r.attempts) > 1), 'some files needed more than one attempt');
    // Honouring Retry-After: 1 s: the first retries cannot come back sooner than that.
    const firstForward = proxy.seen.filter((s) => s.method === 'PUT')[REFUSALS]!;
    assert.ok(firstForward, 'uploads went through after the refusals');
    assert.ok(Date.now() - started >= 1000);
    assert.match(run.stderr, /BUSY .*retry 1 in 1000 ms/);
    const listed = await listAll(srv.url);
    assert.equal(listed.length, FILES, 'each file stored once');
    assert.equal(new Set(listed.map((f) => f.name)).size, FILES);
  });

  it('a service that stays down fails fast with SERVER_UNREACHABLE', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const run = await runCli(['upload', 'in', '--server', `http://127.0.0.1:${port}`, '--retries', '2', '--retry-base-ms', '50'], { cwd: dir });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /SERVER_UNREACHABLE: cannot reach/);
    assert.equal(run.stderr.match(/SERVER_UNREACHABLE/g)?.length, 1, `one round of retries, not one per file: ${run.stderr}`);
  });
});
