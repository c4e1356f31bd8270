// What `sluice upload` picks up from its arguments: directories walked
// recursively, quoted globs expanded, --include/--exclude applied (base name
// without "/", relative path with it), symlinks skipped unless followed,
// symlink cycles ended, missing paths reported.

import assert from 'node:assert/strict';
import { mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { walk } from '../src/cli/walk.ts';
import { tempDir, writeTree } from './helpers/cli.ts';

describe('sluice upload: walking paths and globs', () => {
  let dir: string;
  let cwd: string;
  before(async () => {
    dir = await tempDir('walk');
    await writeTree(dir, {
      'photos/a.jpg': 'a',
      'photos/b.png': 'b',
      'photos/raw/c.jpg': 'c',
      'photos/raw/.hidden.jpg': 'h',
      'docs/readme.md': 'r',
      'elsewhere/linked.txt': 'l',
    });
    await symlink(path.join(dir, 'elsewhere'), path.join(dir, 'photos/link-to-elsewhere'));
    await symlink(path.join(dir, 'photos'), path.join(dir, 'photos/raw/loop'));
    cwd = process.cwd();
    process.chdir(dir);
  });
  after(async () => {
    process.chdir(cwd);
    await rm(dir, { recursive: true, force: true });
  });

  const none = { followSymlinks: false, include: [], exclude: [] };
  const shown = (r: Awaited<ReturnType<typeof walk>>) => r.files.map((f) => f.display).sort();

  it('walks directories, skipping symlinks by default', async () => {
    const r = await walk(['photos'], none);
    assert.deepEqual(shown(r), ['photos/a.jpg', 'photos/b.png', 'photos/raw/.hidden.jpg', 'photos/raw/c.jpg']);
    assert.deepEqual(r.skipped.map((s) => [s.display, s.reason]).sort(), [['photos/link-to-elsewhere', 'symlink'], ['photos/raw/loop', 'symlink']]);
    assert.equal(r.files.find((f) => f.display === 'photos/a.jpg')?.size, 1);
  });

  it('follows symlinks when asked, entering each directory once', async () => {
    const r = await walk(['photos'], { ...none, followSymlinks: true });
    assert.deepEqual(shown(r), ['photos/a.jpg', 'photos/b.png', 'photos/link-to-elsewhere/linked.txt', 'photos/raw/.hidden.jpg', 'photos/raw/c.jpg']);
  });

  it('expands globs and applies include and exclude', async () => {
    // Globs on the command line follow fs.glob (like a shell): dot-files only when named.
    assert.deepEqual(shown(await walk(['photos/**/*.jpg'], none)), ['photos/a.jpg', 'photos/raw/c.jpg']);
    assert.deepEqual(shown(await walk(['photos', 'docs'], { ...none, include: ['*.jpg', '*.md'], exclude: ['.*'] })), ['docs/readme.md', 'photos/a.jpg', 'photos/raw/c.jpg']);
    // Include/exclude patterns see dot-files, since the walk does.
    assert.deepEqual(shown(await walk(['photos'], { ...none, exclude: ['raw/**'] })), ['photos/a.jpg', 'photos/b.png']);
    assert.deepEqual(shown(await walk(['photos'], { ...none, include: ['raw/*.jpg'] })), ['photos/raw/.hidden.jpg', 'photos/raw/c.jpg']);
  });

  it('reports paths and patterns that match nothing', async () => {
    await mkdir('empty-dir');
    const r = await walk(['nope.txt', 'nothing/*.zip', 'empty-dir'], none);
    assert.deepEqual(r.files, []);
    assert.deepEqual(r.problems.map((p) => [p.display, p.code]), [['nope.txt', 'ENOENT'], ['nothing/*.zip', 'NO_MATCH']]);
  });
});
