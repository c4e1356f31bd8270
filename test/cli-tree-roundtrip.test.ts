// Directory structure through the real CLI: `sluice upload ./photos` stores
// each file's relative path, `GET /v1/files?prefix=` filters on it, and
// `sluice download` rebuilds the same tree, including two files with the
// same base name in different folders. A download never replaces a file
// silently: an existing file with other bytes, or two files of one run that
// land on the same path, fail with a code naming both, and a non-zero exit.

import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call, sha256 } from './helpers/http.ts';
import { fileLines, listAll, runCli, tempDir, writeTree } from './helpers/cli.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

const backend = backends().includes('s3') ? 's3' : 'fs';

/** Every file under `root`, as '/'-separated relative path → contents. */
async function readTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    out[path.relative(root, abs).split(path.sep).join('/')] = await readFile(abs, 'utf8');
  }
  return out;
}

describe(`sluice upload/download keep the directory tree (${backend})`, () => {
  let srv: TestServer;
  let dir: string;
  const tree: Record<string, string> = {
    '2024/a.jpg': 'first a\n',
    '2025/a.jpg': 'second a, same base name\n',
    '2024/trip/b.txt': 'b\n',
    'top.txt': 'top\n',
    'ünïcödé/ファイル.txt': 'こんにちは\n',
  };
  const up = (args: string[]) => runCli(['upload', ...args, '--server', srv.url, '--json', '--no-state'], { cwd: dir });
  const down = (args: string[]) => runCli(['download', ...args, '--server', srv.url, '--json'], { cwd: dir });

  before(async () => {
    srv = await startServer({ backend, label: 'cli-roundtrip' });
    dir = await tempDir('roundtrip');
    await writeTree(path.join(dir, 'photos'), tree);
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  let ids: string[] = [];

  it('stores each file under its relative path and lists it by prefix', async () => {
    const run = await up(['./photos']);
    assert.equal(run.code, 0, run.stderr);
    ids = fileLines(run).map((l) => l.id as string);
    const listed = await listAll(srv.url);
    assert.deepEqual(listed.map((f) => f.path).sort(), Object.keys(tree).map((p) => `photos/${p}`).sort());
    for (const f of listed) {
      const manifest = (await call(`${srv.url}/v1/files/${f.id}`)).json<{ path: string; name: string }>();
      assert.equal(manifest.name, path.posix.basename(manifest.path));
    }

    const page = (await call(`${srv.url}/v1/files?prefix=${encodeURIComponent('photos/2024/')}`)).json<{ files: { path: string }[]; nextCursor?: string }>();
    assert.deepEqual(page.files.map((f) => f.path).sort(), ['photos/2024/a.jpg', 'photos/2024/trip/b.txt']);
    assert.equal(page.nextCursor, undefined);
    // Pages of one under a filter still reach every match, oldest first.
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const p = (await call(`${srv.url}/v1/files?limit=1&prefix=photos/20${cursor ? `&cursor=${cursor}` : ''}`)).json<{ files: { path: string }[]; nextCursor?: string }>();
      paged.push(...p.files.map((f) => f.path));
      cursor = p.nextCursor;
    } while (cursor);
    assert.deepEqual(paged.sort(), ['photos/2024/a.jpg', 'photos/2024/trip/b.txt', 'photos/2025/a.jpg']);
  });

  it('downloads the ids (or a prefix) back into the same tree, same base names included', async () => {
    const out = path.join(dir, 'restored-ids');
    const run = await down([...ids, '-o', out]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(out), Object.fromEntries(Object.entries(tree).map(([k, v]) => [`photos/${k}`, v])));

    const sub = path.join(dir, 'restored-prefix');
    const byPrefix = await down(['--prefix', 'photos/2024/', '-o', sub]);
    assert.equal(byPrefix.code, 0, byPrefix.stderr);
    assert.deepEqual(await readTree(sub), { 'photos/2024/a.jpg': tree['2024/a.jpg'], 'photos/2024/trip/b.txt': tree['2024/trip/b.txt'] });
  });

  it('refuses two files of one run that land on the same path, naming both', async () => {
    // Two uploads of the same file: same path, two ids.
    await writeFile(path.join(dir, 'twice.txt'), 'one\n');
    const first = fileLines(await up(['twice.txt']))[0]!;
    await writeFile(path.join(dir, 'twice.txt'), 'two!\n');
    const second = fileLines(await up(['twice.txt']))[0]!;
    const out = path.join(dir, 'collide');
    const run = await down([first.id as string, second.id as string, '-o', out]);
    assert.equal(run.code, 1, 'the exit code says some files failed');
    const lines = fileLines(run);
    assert.equal(lines.length, 2);
    for (const l of lines) {
      assert.equal(l.status, 'failed');
      const err = l.error as { code: string; message: string };
      assert.equal(err.code, 'PATH_COLLISION');
      assert.ok(err.message.includes(first.id as string) && err.message.includes(second.id as string), err.message);
    }
    assert.deepEqual(await readdir(out), [], 'nothing written');
  });

  it('refuses to replace an existing file with other bytes, unless --overwrite', async () => {
    await writeFile(path.join(dir, 'keep.txt'), 'uploaded\n');
    const f = fileLines(await up(['keep.txt']))[0]!;
    const out = path.join(dir, 'existing');
    await writeTree(out, { 'keep.txt': 'local edits\n' });
    const run = await down([f.id as string, '-o', out]);
    assert.equal(run.code, 1);
    const err = fileLines(run)[0]!.error as { code: string; message: string };
    assert.equal(err.code, 'FILE_EXISTS');
    assert.ok(err.message.includes(path.join(out, 'keep.txt')) && err.message.includes(f.id as string), err.message);
    assert.equal(await readFile(path.join(out, 'keep.txt'), 'utf8'), 'local edits\n');

    const again = await down([f.id as string, '-o', out, '--overwrite']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await readFile(path.join(out, 'keep.txt'), 'utf8'), 'uploaded\n');
    // The same bytes already there: skipped, not an error.
    const third = await down([f.id as string, '-o', out]);
    assert.equal(third.code, 0);
    assert.equal(fileLines(third)[0]!.status, 'skipped');
    assert.equal(sha256(await readFile(path.join(out, 'keep.txt'))), f.sha256);
  });
});
