// --workers N with the embedded job queue: every process rescans the same job
// markers, so without a lease a file committed by one process could have its
// jobs run, and its webhook delivered, by another at the same time. Each file
// is now handled only under a lease taken with a conditional write through the
// storage port (src/jobs/file-lease.ts). Counted from the processes' own logs
// and the webhook receiver: every job runs once, every webhook arrives once.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startChild } from './helpers/child-server.ts';
import { startReceiver } from './helpers/webhook-receiver.ts';
import { until } from './helpers/wait.ts';

const FILES = 30;
const SECRET = 'lease-test-secret-0123456789';

async function markers(dataDir: string): Promise<number> {
  const root = path.join(dataDir, 'sluice', '_system', 'jobs');
  const all = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return all.filter((e) => e.isFile() && !e.name.startsWith('.')).length;
}

describe('cluster: job markers under a lease', () => {
  it(`${FILES} files over 2 workers rescanning every second: each job runs once, each webhook arrives once`, { timeout: 300_000 }, async () => {
    const receiver = await startReceiver();
    const srv = await startChild({
      args: ['--workers', '2'],
      env: { SLUICE_JOBS_POOL_SIZE: '1', SLUICE_JOBS_RESCAN_MS: '1000', SLUICE_WEBHOOK_URL: receiver.url, SLUICE_WEBHOOK_SECRET: SECRET },
    });
    try {
      await srv.waitForLog(() => srv.logs.filter((l) => l.msg === 'sluice listening').length >= 2);
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: FILES }, async (_, i) => {
          // Text: the default gzip job; large enough that gzipping 30 takes a few rescans.
          const body = `${'line of text '.repeat(20_000)}${randomBytes(8).toString('hex')}\n`;
          const res = await fetch(`${srv.url}/v1/files/f${i}.txt`, { method: 'PUT', body, headers: { 'content-type': 'text/plain' } });
          assert.equal(res.status, 201, await res.clone().text());
          ids.push(((await res.json()) as { files: { id: string }[] }).files[0]!.id);
        }),
      );
      const delivered = () => new Set(receiver.deliveries.map((d) => (JSON.parse(d.body) as { file: { id: string } }).file.id));
      await until(async () => delivered().size === FILES && (await markers(srv.dataDir!)) === 0, 'every file processed and delivered', 60_000).catch(async (err: unknown) => {
        const done = srv.logs.filter((l) => l.msg === 'job done').length;
        throw new Error(`${String(err)}: ${delivered().size} delivered, ${receiver.deliveries.length} deliveries, ${await markers(srv.dataDir!)} markers, ${done} jobs done`);
      });

      const runs = new Map<string, number>();
      for (const l of srv.logs) {
        if (l.msg !== 'job done') continue;
        const k = `${String(l.fileId)}/${String(l.job)}`;
        runs.set(k, (runs.get(k) ?? 0) + 1);
      }
      assert.equal(runs.size, FILES, 'one gzip job per file');
      const twice = [...runs].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], `jobs run more than once: ${twice.length}`);
      const perFile = new Map<string, number>();
      for (const d of receiver.deliveries) {
        const id = (JSON.parse(d.body) as { file: { id: string } }).file.id;
        perFile.set(id, (perFile.get(id) ?? 0) + 1);
      }
      const dup = [...perFile].filter(([, n]) => n > 1);
      assert.deepEqual(dup, [], `webhooks delivered more than once: ${dup.length}`);
      assert.deepEqual([...perFile.keys()].sort(), ids.sort());
    } finally {
      srv.proc.kill('SIGTERM');
      await srv.exited;
      await srv.cleanup();
      await receiver.close();
    }
  });
});
