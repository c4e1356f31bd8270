// Bytes corrupted in transit never end up stored: a file sent with its digest
// is refused by the server (422) and retried; a large file hashed in the same
// pass is compared with the server's answer, deleted and retried.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { sha256 } from './helpers/http.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { fileLines, listAll, runCli, tempDir, writeTree } from './helpers/cli.ts';
import { backends, leftovers, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

describe(`sluice upload integrity against corruption in transit (${backend})`, () => {
  let srv: TestServer;
  let proxy: FaultProxy;
  let dir: string;
  const corruptFirst = new Set<string>();
  // Text with a fixed start: random base64 can begin with magic bytes ("MZ" is a DOS executable) and be refused.
  const small = `text\n${randomBytes(3000).toString('base64')}`;
  const large = `text\n${randomBytes(1536 * 1024).toString('base64')}`; // 2 MiB of text
  before(async () => {
    srv = await startServer({ backend, label: 'cli-integrity' });
    // The first PUT of each name has one byte flipped on the wire.
    proxy = await startFaultProxy(srv.url, (r) => {
      if (r.method !== 'PUT' || corruptFirst.has(r.url)) return { kind: 'forward' };
      corruptFirst.add(r.url);
      return { kind: 'corrupt' };
    });
    dir = await tempDir('integrity');
    await writeTree(dir, { 'in/small.txt': small, 'in/large.txt': large });
  });
  after(async () => {
    await proxy.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores only the true bytes, after a retry', async () => {
    // large.txt (2 MiB) is over --hash-first-max, so it is checked after the answer.
    const run = await runCli(['upload', 'in', '--server', proxy.url, '--json', '--hash-first-max', '1MiB', '--retry-base-ms', '10'], { cwd: dir });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const results = fileLines(run);
    assert.ok(results.every((r) => r.status === 'ok' && r.attempts === 2), JSON.stringify(results));
    assert.match(run.stderr, /small\.txt: CHECKSUM_MISMATCH .*retry 1/);
    assert.match(run.stderr, /large\.txt: CHECKSUM_MISMATCH .*retry 1/);
    // The corrupt copy of large.txt was committed by the server (it had no digest to check) and then deleted.
    const deletes = proxy.seen.filter((s) => s.method === 'DELETE');
    assert.equal(deletes.length, 1);
    const listed = await listAll(srv.url);
    assert.deepEqual(listed.map((f) => [f.name, f.sha256]).sort(), [
      ['large.txt', sha256(Buffer.from(large))],
      ['small.txt', sha256(Buffer.from(small))],
    ]);
    const left = await leftovers(srv);
    assert.equal(left.pending, 0);
    assert.equal(left.keys.length, 4, 'two originals and two manifests, nothing of the corrupt copies');
  });
});
