// Under an induced event-loop block, new requests get 503 BUSY with
// Retry-After while /health keeps answering 200. The server runs in this
// process (so the test can block its loop); the client is a child process, so
// its requests are not blocked with it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { startServer, type TestServer } from './helpers/server.ts';

const CLIENT = `
const [url, ms] = [process.argv[1], Number(process.argv[2])];
const out = { health: [], files: [], retryAfter: [] };
const end = Date.now() + ms;
while (Date.now() < end) {
  const [h, f] = await Promise.all([
    fetch(url + '/health').then((r) => r.status, () => 0),
    fetch(url + '/v1/files').then(async (r) => {
      if (r.status === 503) out.retryAfter.push(r.headers.get('retry-after') + ' ' + (await r.json()).error.code);
      else await r.arrayBuffer();
      return r.status;
    }, () => 0),
  ]);
  out.health.push(h);
  out.files.push(f);
  await new Promise((r) => setTimeout(r, 30));
}
console.log(JSON.stringify(out));
`;

describe('load shedding', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: { SLUICE_SHED_EVENT_LOOP_DELAY_MS: '100' } });
  });
  after(() => srv.close());

  it('answers 503 BUSY with Retry-After under an event-loop block, while /health answers 200', async () => {
    const client = spawn(process.execPath, ['--input-type=module', '-e', CLIENT, srv.url, '4000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    client.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = new Promise<void>((resolve) => client.once('exit', () => resolve()));

    // Block the loop in 300 ms slices for ~3 s, yielding briefly so requests are still accepted.
    await new Promise((r) => setTimeout(r, 500));
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const sliceEnd = Date.now() + 300;
      while (Date.now() < sliceEnd) {
        /* busy: an induced event-loop block */
      }
      await yieldLoop();
    }
    await done;
    const out = JSON.parse(stdout) as { health: number[]; files: number[]; retryAfter: string[] };
    assert.ok(out.health.length > 0 && out.health.every((s) => s === 200), `health: ${out.health.join(',')}`);
    assert.ok(out.files.includes(503), `files: ${out.files.join(',')}`);
    assert.ok(out.retryAfter.every((r) => /^\d+ BUSY$/.test(r)), out.retryAfter.join('; '));
    // And it recovers once the loop is free again.
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await fetch(`${srv.url}/v1/files`)).status, 200);
  });
});
