// A CLI killed midway (SIGKILL) and re-run completes with nothing stored
// twice (the dead run's journal lock is taken over); an upload the server
// committed just before the kill is found on the server instead of being sent
// again; a run overlapping a live one refuses to start.

import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from './helpers/http.ts';
import { fileLines, listAll, runCli, spawnCli, tempDir, writeTree } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

function assertEachOnce(listed: Array<{ name: string }>, names: string[]) {
  assert.deepEqual(listed.map((f) => f.name).sort(), [...names].sort());
}

describe(`sluice upload, interrupted and resumed (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  before(async () => {
    srv = await startServer({ backend, label: 'cli-resume' });
    dir = await tempDir('resume');
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGKILL midway, then a re-run: every file stored exactly once', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `f${String(i).padStart(3, '0')}.txt`);
    await writeTree(path.join(dir, 'kill'), Object.fromEntries(names.map((n) => [`in/${n}`, `content of ${n}\n`.repeat(50)])));
    const cwd = path.join(dir, 'kill');
    const args = ['upload', 'in', '--server', srv.url, '--json', '-c', '4'];
    const first = spawnCli(args, { cwd });
    await first.waitFor((l) => l.status === 'ok', 40);
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    const before = fileLines(killed).length;
    assert.ok(before < names.length, 'killed before the end');

    const second = await runCli(args, { cwd });
    assert.equal(second.code, 0, second.stderr);
    const results = fileLines(second);
    assert.equal(results.length, names.length);
    assert.ok(results.filter((r) => r.status === 'skipped').length >= 40, 'files done before the kill are skipped');
    assertEachOnce(await listAll(srv.url), names);
    for (const f of await listAll(srv.url)) await call(`${srv.url}/v1/files/${f.id}`, { method: 'DELETE' });
  });

  it('a file committed just before the kill (journal says begun, not done) is found, not re-sent', async () => {
    const cwd = path.join(dir, 'window');
    await writeTree(cwd, { 'in/committed.txt': 'stored before the kill\n', 'in/other.txt': 'never sent\n' });
    const abs = path.join(cwd, 'in/committed.txt');
    const st = await stat(abs);
    // The server committed it (under the path the CLI sends)...
    const put = await call(`${srv.url}/v1/files/committed.txt?path=in/committed.txt`, { method: 'PUT', body: await readFile(abs) });
    assert.equal(put.status, 201);
    // ...but the CLI died before writing "done": its journal holds only the begin.
    const begin = { op: 'begin', server: srv.url, path: abs, size: st.size, mtimeMs: Math.trunc(st.mtimeMs), at: new Date(Date.now() - 1000).toISOString() };
    await writeFile(path.join(cwd, '.sluice-state.ndjson'), `${JSON.stringify({ sluice: 'upload-state', v: 1 })}\n${JSON.stringify(begin)}\n{"op":"do`);

    const run = await runCli(['upload', 'in', '--server', srv.url, '--json'], { cwd });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /1 file\(s\) of an interrupted run were already on the server/);
    const byName = new Map(fileLines(run).map((r) => [path.basename(String(r.path)), r]));
    assert.equal(byName.get('committed.txt')?.status, 'skipped');
    assert.equal(byName.get('committed.txt')?.id, put.json<{ files: Array<{ id: string }> }>().files[0]!.id);
    assert.equal(byName.get('other.txt')?.status, 'ok');
    assertEachOnce(await listAll(srv.url), ['committed.txt', 'other.txt']);
    for (const f of await listAll(srv.url)) await call(`${srv.url}/v1/files/${f.id}`, { method: 'DELETE' });
  });

  it('a second run while the first still holds the journal refuses to start', async () => {
    const cwd = path.join(dir, 'overlap');
    await writeTree(cwd, { 'in/a.txt': 'a\n' });
    // A live process owns the lock: this test process.
    await writeFile(path.join(cwd, '.sluice-state.ndjson.lock'), `${process.pid}\n`);
    const run = await runCli(['upload', 'in', '--server', srv.url], { cwd });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /JOURNAL_LOCKED: .*in use by another sluice run \(pid \d+\)/);
    assert.deepEqual(await listAll(srv.url), []);
  });
});
