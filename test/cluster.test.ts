// --workers 2: two processes share the port; a worker that dies is replaced;
// /metrics answers for the whole cluster; SIGTERM stops everything with exit 0.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startChild } from './helpers/child-server.ts';

describe('cluster', () => {
  it('restarts a killed worker, aggregates metrics and shuts down cleanly', { timeout: 300_000 }, async () => {
    const srv = await startChild({ args: ['--workers', '2'] });
    try {
      const listening = () => srv.logs.filter((l) => l.msg === 'sluice listening').map((l) => l.pid!);
      await srv.waitForLog(() => listening().length >= 2);
      const [first, second] = listening();
      assert.notEqual(first, second);
      assert.notEqual(first, srv.proc.pid, 'workers are not the primary');

      process.kill(first!, 'SIGKILL');
      await srv.waitForLog((l) => l.msg === 'cluster: worker died; starting a new one');
      await srv.waitForLog(() => listening().length >= 3);
      const replacement = listening()[2]!;
      assert.ok(![first, second].includes(replacement));

      for (let i = 0; i < 6; i++) assert.equal((await fetch(`${srv.url}/health`)).status, 200);
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      // Summed over both workers: every /health above is counted, whichever worker served it.
      const m = /sluice_http_requests_total\{method="GET",route="\/health",status="200"\} (\d+)/.exec(metrics);
      assert.ok(m && Number(m[1]) >= 6, metrics.slice(0, 500));

      srv.proc.kill('SIGTERM');
      const { code } = await srv.exited;
      assert.equal(code, 0);
      assert.equal(srv.logs.filter((l) => l.msg === 'shutdown: done').length, 2, 'both workers ran the shutdown sequence');
    } finally {
      await srv.cleanup();
    }
  });

  it('gives up on a crash loop instead of restarting forever', { timeout: 300_000 }, async () => {
    // A port that is taken makes every worker fail at listen.
    const blocker = await startChild();
    const srv = startChild({ args: ['--workers', '2'], env: { PORT: String(blocker.port), SLUICE_WORKER_MAX_RESTARTS: '2' }, startTimeoutMs: 90_000 });
    try {
      await assert.rejects(srv, /exited \(1\)/);
    } finally {
      await blocker.cleanup();
    }
  });
});
