// A file the server refuses is reported with its code, the exit code is
// non-zero, and every other file of the batch is stored.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { elf, pngOfSize } from './helpers/http.ts';
import { fileLines, listAll, runCli, summaryOf, tempDir, writeTree } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

describe(`sluice upload with a refused file (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  before(async () => {
    srv = await startServer({ backend, label: 'cli-reject', env: { SLUICE_MAX_FILE_BYTES: String(64 * 1024) } });
    dir = await tempDir('reject');
    await writeTree(dir, {
      'batch/a.png': await pngOfSize(2000),
      'batch/b.txt': 'fine\n',
      'batch/program.jpg': elf(), // an executable named as an image
      'batch/too-big.png': await pngOfSize(100 * 1024),
      'batch/z.txt': 'also fine\n',
    });
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 1, lists the failures with their codes, stores the rest', async () => {
    const run = await runCli(['upload', 'batch', '--server', srv.url, '--json', '--retries', '1'], { cwd: dir });
    assert.equal(run.code, 1);
    const byName = new Map(fileLines(run).map((r) => [path.basename(String(r.path)), r]));
    assert.equal(byName.get('program.jpg')?.status, 'failed');
    assert.equal((byName.get('program.jpg')?.error as { code: string }).code, 'TYPE_NOT_ALLOWED');
    assert.equal((byName.get('too-big.png')?.error as { code: string }).code, 'FILE_TOO_LARGE');
    assert.equal(byName.get('program.jpg')?.attempts, 1, 'a refusal is not retried');
    for (const ok of ['a.png', 'b.txt', 'z.txt']) assert.equal(byName.get(ok)?.status, 'ok', ok);
    const summary = summaryOf(run)!;
    assert.deepEqual([summary.ok, summary.failed], [3, 2]);
    assert.deepEqual((await listAll(srv.url)).map((f) => f.name).sort(), ['a.png', 'b.txt', 'z.txt']);

    // Without --json the failures are listed for a human, and the exit code says the same.
    const human = await runCli(['upload', 'batch', '--server', srv.url], { cwd: dir });
    assert.equal(human.code, 1);
    assert.match(human.stdout, /skipped 3, failed 2/);
    assert.match(human.stdout, /program\.jpg: TYPE_NOT_ALLOWED/);
    assert.match(human.stdout, /too-big\.png: FILE_TOO_LARGE/);
  });
});
