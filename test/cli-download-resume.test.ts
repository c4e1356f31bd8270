// `sluice download` writes files verified against their sha256; a partial
// file left by an earlier run is resumed with Range (only the rest crosses the
// wire), a corrupt partial file is detected and replaced, a complete file is
// skipped, and an unknown id fails with its code.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, sha256 } from './helpers/http.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { fileLines, runCli, tempDir } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

describe(`sluice download with resume (${backend})`, () => {
  let srv: TestServer;
  let proxy: FaultProxy;
  let dir: string;
  const data = Buffer.from(`text\n${randomBytes(3 * 1024 * 1024).toString('base64')}`); // 4 MiB of text
  let id: string;
  before(async () => {
    srv = await startServer({ backend, label: 'cli-download' });
    proxy = await startFaultProxy(srv.url, () => ({ kind: 'forward' }));
    dir = await tempDir('download');
    const put = await call(`${srv.url}/v1/files/${encodeURIComponent('report 2024 ü.txt')}`, { method: 'PUT', body: data });
    assert.equal(put.status, 201);
    id = put.json<{ files: Array<{ id: string }> }>().files[0]!.id;
  });
  after(async () => {
    await proxy.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  const contentRequests = () => proxy.seen.filter((s) => s.url.endsWith('/content'));

  it('resumes a partial file with Range and verifies the whole', async () => {
    const out = path.join(dir, 'resume');
    const half = 1_500_000;
    await mkdir(out, { recursive: true });
    await writeFile(path.join(out, `.report 2024 ü.txt.${id}.part`), data.subarray(0, half));
    const seenBefore = contentRequests().length;
    const run = await runCli(['download', id, '-o', out, '--server', proxy.url, '--json'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    const [r] = fileLines(run);
    assert.equal(r?.status, 'ok');
    assert.equal(r?.resumedAt, half);
    const req = contentRequests().slice(seenBefore);
    assert.equal(req.length, 1);
    assert.equal(req[0]!.headers.range, `bytes=${half}-`);
    assert.equal(req[0]!.headers['if-range'], `"${sha256(data)}"`);
    assert.equal(sha256(await readFile(path.join(out, 'report 2024 ü.txt'))), sha256(data));
    assert.deepEqual(await readdir(out), ['report 2024 ü.txt'], 'no part file left');

    // Again: the file is there and whole, so nothing is fetched.
    const again = await runCli(['download', id, '-o', out, '--server', proxy.url, '--json'], { cwd: dir });
    assert.equal(again.code, 0);
    assert.equal(fileLines(again)[0]?.status, 'skipped');
    assert.equal(contentRequests().length, seenBefore + 1);
  });

  it('a connection cut mid-download is resumed from where it stopped', async () => {
    const out = path.join(dir, 'cut');
    const cut = 1_234_567;
    const cutting = await startFaultProxy(srv.url, (r) => (r.url.endsWith('/content') && !r.headers.range ? { kind: 'truncate', bytes: cut } : { kind: 'forward' }));
    try {
      const run = await runCli(['download', id, '-o', out, '--server', cutting.url, '--json', '--retry-base-ms', '1'], { cwd: dir });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /NETWORK_ERROR|retry 1/);
      const ranges = cutting.seen.filter((s) => s.url.endsWith('/content')).map((s) => s.headers.range ?? 'none');
      assert.equal(ranges[0], 'none');
      // The retry asks for the rest only: from whatever reached the disk before the cut.
      assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
      assert.ok(Number(/=(\d+)-/.exec(ranges[1]!)![1]) > 0 && Number(/=(\d+)-/.exec(ranges[1]!)![1]) <= cut);
      assert.equal(sha256(await readFile(path.join(out, 'report 2024 ü.txt'))), sha256(data));
      assert.deepEqual(await readdir(out), ['report 2024 ü.txt']);
    } finally {
      await cutting.close();
    }
  });

  it('a corrupt partial file fails verification and is downloaded again from the start', async () => {
    const out = path.join(dir, 'corrupt');
    await mkdir(out, { recursive: true });
    const bad = Buffer.from(data.subarray(0, 1_000_000));
    bad[500] = bad[500]! ^ 0x01;
    await writeFile(path.join(out, `.report 2024 ü.txt.${id}.part`), bad);
    const run = await runCli(['download', id, '-o', out, '--server', srv.url, '--json', '--retry-base-ms', '1'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /CHECKSUM_MISMATCH .*retry 1/);
    assert.equal(fileLines(run)[0]?.attempts, 2);
    assert.equal(sha256(await readFile(path.join(out, 'report 2024 ü.txt'))), sha256(data));
    assert.deepEqual(await readdir(out), ['report 2024 ü.txt']);
  });

  it('an unknown id is reported and the exit code is non-zero', async () => {
    const out = path.join(dir, 'missing');
    const run = await runCli(['download', '01a212d2-c483-77e4-bbb9-6361b3aafa90', id, '-o', out, '--server', srv.url, '--json'], { cwd: dir });
    assert.equal(run.code, 1);
    const results = fileLines(run);
    assert.equal((results.find((r) => r.status === 'failed')?.error as { code: string }).code, 'FILE_NOT_FOUND');
    assert.ok(results.some((r) => r.status === 'ok'));
  });
});
