// Durability on fs by POSIX rules: a new file survives a power cut only if its
// data, its directory entry and the entries of every directory created for it
// reach the disk. The fs backend fsyncs the file and its directory; the parents
// that mkdir just created must be fsynced too (each new directory's entry lives
// in its parent). Watched from outside with strace (-y prints the path of each
// fsync'd descriptor): the real system calls, no seam in the code.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const strace = spawnSync('strace', ['-V'], { encoding: 'utf8' });
const canTrace = strace.status === 0 && spawnSync('strace', ['-qq', '-e', 'trace=none', 'true']).status === 0;
if (!canTrace) console.warn('\n#### fs-durable-dirs: strace is not available (or ptrace is not allowed); SKIPPED ####\n');

/** Directories (relative to root) fsync'd by one process that puts each key in turn. */
function fsyncedDirs(root: string, keys: string[]): string[] {
  const script = `
    import { FsStorage } from ${JSON.stringify(path.resolve('src/storage/fs.ts'))};
    const s = new FsStorage(${JSON.stringify(root)});
    for (const key of ${JSON.stringify(keys)}) await s.put(key, (async function* () { yield Buffer.from('x'); })(), { contentType: 'text/plain' });
  `;
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const dirs = new Set<string>();
  for (const m of r.stderr.matchAll(/f(?:data)?sync\(\d+<([^>]*)>\) = 0/g)) {
    const p = m[1]!;
    if (p !== root && !p.startsWith(root + path.sep)) continue;
    if (path.basename(p).startsWith('.sluice-tmp-')) continue; // the file's own data
    dirs.add(path.relative(root, p) || '.');
  }
  return [...dirs].sort();
}

describe('fs backend durability of new directories', { skip: !canTrace }, () => {
  it('a put several levels deep fsyncs every directory it created, and the one above them', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sluice-fsync-'));
    try {
      const synced = fsyncedDirs(root, ['p/t/a/b/c/original']);
      assert.deepEqual(synced, ['.', 'p', 'p/t', 'p/t/a', 'p/t/a/b', 'p/t/a/b/c'].sort());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a put into existing directories fsyncs only its own directory', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sluice-fsync-'));
    try {
      fsyncedDirs(root, ['p/t/a/one']);
      // Nothing new above it: one fsync of the file's directory, as before.
      assert.deepEqual(fsyncedDirs(root, ['p/t/a/two']), ['p/t/a']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
