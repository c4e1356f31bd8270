// SLUICE_MAX_ACTIVE_UPLOADS: past the cap an upload waits, its 100 Continue
// withheld and its socket unread, and is served once a slot frees: it is
// neither refused nor reset.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pngOfSize } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startServer({ env: { SLUICE_MAX_ACTIVE_UPLOADS: '1', SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: '60000' } });
});
after(() => srv.close());

interface RawClient {
  sock: Socket;
  received(): string;
  /** Resolves once the received text matches. */
  until(re: RegExp): Promise<string>;
}

async function open(head: string): Promise<RawClient> {
  const { port } = new URL(srv.url);
  const sock = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  let raw = '';
  const waiters: (() => void)[] = [];
  sock.on('data', (d: Buffer) => {
    raw += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  sock.write(head);
  return {
    sock,
    received: () => raw,
    until: async (re) => {
      while (!re.test(raw)) {
        if (sock.destroyed) throw new Error(`socket closed; received ${JSON.stringify(raw)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          sock.once('close', r);
        });
      }
      return raw;
    },
  };
}

/** Waits (bounded) until the in-process budget reaches a state: the server's own counters are the event. */
async function budgetReaches(check: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await sleep(5);
  assert.ok(check(), 'the budget never reached the expected state');
}

test('an upload past the active cap waits without 100 Continue, then is served', async () => {
  const a = await pngOfSize(200_000);
  const b = await pngOfSize(50_000);
  const first = await open(`PUT /v1/files/a.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${a.length}\r\nConnection: close\r\n\r\n`);
  first.sock.write(a.subarray(0, 1000));
  await budgetReaches(() => srv.deps.budget.holders === 1);

  const second = await open(`PUT /v1/files/b.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
  await budgetReaches(() => srv.deps.budget.waiting === 1);
  assert.equal(second.received(), '', 'no 100 Continue (nor anything else) while the slot is taken');

  first.sock.write(a.subarray(1000));
  assert.match(await first.until(/^HTTP\/1\.1 \d{3}[^]*\r\n\r\n[^]*\}$/), /^HTTP\/1\.1 201 /);
  await second.until(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
  second.sock.write(b);
  const answer = await second.until(/HTTP\/1\.1 (?!100)\d{3}[^]*\r\n\r\n[^]*\}$/);
  assert.match(answer, /HTTP\/1\.1 201 /);
  assert.equal(srv.deps.budget.holders, 0);
  first.sock.destroy();
  second.sock.destroy();
});
