// A client that dies while the service is still storing an earlier file of its
// multipart request: busboy destroys the part it was writing (the next file,
// which nobody reads yet) with the request's abort error. Until a reader
// iterates that part nothing listens to it, and an unheard 'error' crashes the
// process (seen in CI as an uncaught AbortError after a CLI was SIGKILLed
// mid-batch). The runner fails this test on any uncaught exception.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { FaultyStorage } from './helpers/faulty-storage.ts';
import { leftovers, startServer, type TestServer } from './helpers/server.ts';
import { until } from './helpers/wait.ts';

let srv: TestServer;
let faulty: FaultyStorage;
before(async () => {
  srv = await startServer({ label: 'mp-abort-unread', wrapStorage: (s) => (faulty = new FaultyStorage(s)) });
});
after(() => srv.close());

test('a client gone while an earlier file is being stored leaves nothing and crashes nothing', async () => {
  let release!: (v: { fail: boolean }) => void;
  const held = new Promise<{ fail: boolean }>((resolve) => (release = resolve));
  let firstPut!: () => void;
  const firstPutStarted = new Promise<void>((resolve) => (firstPut = resolve));
  faulty.putFault = (key) => (key.endsWith('/original') ? { kind: 'hold', release: held } : undefined);
  faulty.onPut = (key) => {
    if (key.endsWith('/original')) firstPut();
  };

  const B = 'AbortUnreadPart';
  // Part 1 whole, then part 2's header and its first bytes in the same write: busboy is
  // writing part 2 while the service still stores part 1.
  const head = Buffer.from(
    `--${B}\r\nContent-Disposition: form-data; name="a"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\n${'first file\n'.repeat(100)}\r\n` +
      `--${B}\r\nContent-Disposition: form-data; name="b"; filename="b.txt"\r\nContent-Type: text/plain\r\n\r\n${'second file\n'.repeat(100)}`,
  );
  const { port } = new URL(srv.url);
  const sock = connect(Number(port), '127.0.0.1');
  sock.on('error', () => {});
  await new Promise<void>((resolve) => sock.on('connect', () => resolve()));
  sock.write(`POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${B}\r\nContent-Length: ${head.length + 1_000_000}\r\n\r\n`);
  sock.write(head);
  await firstPutStarted;
  sock.destroy(); // the client dies mid-request
  await until(() => sock.destroyed, 'the client socket to close');
  release({ fail: false });
  await until(() => [...faulty.inFlight.values()].every((n) => n === 0), 'the held put to settle');
  assert.deepEqual(await until(async () => {
    const left = await leftovers(srv);
    return left.keys.length === 0 && left.pending === 0 ? left : undefined;
  }, 'the aborted request to be cleaned up'), { keys: [], pending: 0 });
  // Still serving.
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
});
