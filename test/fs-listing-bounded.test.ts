// Paging through a large fs listing reads each directory once, not once per
// page: the fs backend keeps a directory's sorted entries while the directory
// is unchanged and starts each page by binary search after the cursor. Before,
// every page read and sorted the whole tenant directory (O(n) per page,
// O(n²/limit) over a listing). Watched with strace: the bytes getdents64
// returned for the tenant directory over the whole listing.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

const canTrace = spawnSync('strace', ['-qq', '-e', 'trace=none', 'true']).status === 0;
if (!canTrace) console.warn('\n#### fs-listing-bounded: strace is not available (or ptrace is not allowed); SKIPPED ####\n');

const FILES = 2000;
const LIMIT = 100;

/** Pages through the listing of `prefix` in a child under strace; the keys listed and getdents64 bytes per directory. */
function tracedListing(root: string, prefix: string): { keys: string[]; bytes: Map<string, number> } {
  const script = `
    import { FsStorage } from ${JSON.stringify(path.resolve('src/storage/fs.ts'))};
    const s = new FsStorage(${JSON.stringify(root)});
    const keys = [];
    let startAfter;
    for (;;) {
      const page = await s.list({ prefix: ${JSON.stringify(prefix)}, startAfter, limit: ${LIMIT} });
      keys.push(...page.objects.map((o) => o.key));
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1).key;
    }
    process.stdout.write(JSON.stringify(keys));
  `;
  const r = spawnSync('strace', ['-f', '-y', '-qq', '-e', 'trace=getdents64', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const bytes = new Map<string, number>();
  for (const m of r.stderr.matchAll(/getdents64\(\d+<([^>]*)>, .*\) = (\d+)/g)) bytes.set(m[1]!, (bytes.get(m[1]!) ?? 0) + Number(m[2]));
  return { keys: JSON.parse(r.stdout) as string[], bytes };
}

describe('fs listing reads a directory once per listing, not once per page', { skip: !canTrace }, () => {
  it(`${FILES} files in one tenant, pages of ${LIMIT}: all listed in order, the tenant directory read about once`, async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sluice-list-'));
    try {
      const tenantDir = path.join(root, 'p', 't');
      const expected: string[] = [];
      for (let i = 0; i < FILES; i++) {
        const id = randomUUID();
        await mkdir(path.join(tenantDir, id), { recursive: true });
        await writeFile(path.join(tenantDir, id, 'manifest.json'), '{}');
        expected.push(`p/t/${id}/manifest.json`);
      }
      // A directory last changed a while ago (a listing of a busy one re-reads it: see fs.ts).
      const past = new Date(Date.now() - 60_000);
      await utimes(tenantDir, past, past);

      const { keys, bytes } = tracedListing(root, 'p/t/');
      assert.deepEqual(keys, expected.sort());
      // One full read of the directory: what a single page must read at least once.
      const one = spawnSync('strace', ['-y', '-qq', '-e', 'trace=getdents64', 'ls', '-f', tenantDir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      let full = 0;
      for (const m of one.stderr.matchAll(/getdents64\(\d+<[^>]*>, .*\) = (\d+)/g)) full += Number(m[1]);
      assert.ok(full > 0, one.stderr.slice(-500));
      const read = bytes.get(tenantDir) ?? 0;
      // Before: FILES / LIMIT = 20 full reads.
      assert.ok(read <= 2 * full, `the tenant directory was read ${(read / full).toFixed(1)} times over (${read} bytes, one read is ${full})`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
