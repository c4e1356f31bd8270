// End-to-end backpressure: when storage is slower than the client, the
// service stops reading the socket, and a process-wide buffer budget makes
// extra uploads wait (sockets unread) instead of growing memory.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it, after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FsStorage } from '../src/storage/fs.ts';
import type { PutOptions, Storage } from '../src/storage/storage.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { pngOfSize } from './helpers/http.ts';
import { until } from './helpers/wait.ts';

/** The real fs backend behind a deliberately slow writer: `bytesPerSec` into each put; counts original bytes. */
type SlowStorage = Storage & { consumed: number; active: number; maxActive: number };

function slowStorage(inner: FsStorage, bytesPerSec: number): SlowStorage {
  // Every other method runs on the real adapter itself: FsStorage keeps private state (#fields),
  // which a method called with another `this` cannot reach (manifests go through putIf).
  const slow = Object.create(inner) as SlowStorage;
  for (const name of Object.getOwnPropertyNames(FsStorage.prototype)) {
    const member = (inner as unknown as Record<string, unknown>)[name];
    if (name !== 'constructor' && typeof member === 'function') Object.assign(slow, { [name]: (member as (...a: unknown[]) => unknown).bind(inner) });
  }
  Object.assign(slow, { consumed: 0, active: 0, maxActive: 0 });
  slow.put = async (key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions) => {
    const original = key.endsWith('/original');
    if (original) slow.maxActive = Math.max(slow.maxActive, ++slow.active);
    try {
      return await inner.put(
        key,
        (async function* () {
          for await (const chunk of body) {
            if (original) slow.consumed += chunk.byteLength;
            await sleep((chunk.byteLength / bytesPerSec) * 1000);
            yield chunk;
          }
        })(),
        opts,
      );
    } finally {
      if (original) slow.active--;
    }
  };
  return slow;
}

/** Writes as fast as the socket accepts; counts bytes the kernel took from us. */
function firehose(sock: Socket, total: number, block: Buffer): { flushed(): number } {
  let flushed = 0;
  let sent = 0;
  const pump = () => {
    while (sent < total && !sock.destroyed) {
      const n = Math.min(block.length, total - sent);
      sent += n;
      const ok = sock.write(block.subarray(0, n), () => (flushed += n));
      if (!ok) return void sock.once('drain', pump);
    }
  };
  pump();
  return { flushed: () => flushed };
}

describe('backpressure', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  async function serverWith(storage: (dir: string) => Storage, env: Record<string, string> = {}): Promise<TestServer> {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bp-'));
    const srv = await startServer({ storage: storage(dir), env: { SLUICE_DATA_DIR: dir, ...env } });
    cleanups.push(async () => {
      await srv.close();
      await rm(dir, { recursive: true, force: true });
    });
    return srv;
  }

  it('a slow store stops the socket from being read: the client cannot run ahead', async () => {
    let storage!: SlowStorage;
    const srv = await serverWith((dir) => (storage = slowStorage(new FsStorage(dir), 4 * 1024 * 1024)));
    const total = 256 * 1024 * 1024;
    const png = await pngOfSize(1024 * 1024);
    const sock = connect(Number(new URL(srv.url).port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => {});
    sock.write(`PUT /v1/files/bp.png HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
    const hose = firehose(sock, total, png);
    // Storage takes 4 MiB/s: once it has 8 MiB, a client without backpressure would have pushed far more.
    await until(() => storage.consumed >= 8 * 1024 * 1024, 'storage to receive 8 MiB');
    const ahead = hose.flushed() - storage.consumed;
    sock.destroy();
    // Without backpressure the client would have pushed all 256 MiB by now. What may be
    // in flight: loopback socket buffers (a few MiB each way) plus small stage buffers.
    assert.ok(storage.consumed > 0, 'storage received data');
    assert.ok(hose.flushed() < 64 * 1024 * 1024, `client flushed ${hose.flushed()} bytes`);
    assert.ok(ahead < 24 * 1024 * 1024, `client ran ${ahead} bytes ahead of storage`);
  });

  it('past the buffer budget, uploads wait with sockets unread, then proceed in order', async () => {
    let storage!: SlowStorage;
    // fs reserves 1 MiB per upload: a 2 MiB budget admits two at a time.
    const srv = await serverWith((dir) => (storage = slowStorage(new FsStorage(dir), 8 * 1024 * 1024)), {
      SLUICE_UPLOAD_BUFFER_BYTES: String(2 * 1024 * 1024),
    });
    const body = await pngOfSize(4 * 1024 * 1024);
    const replies = Array.from({ length: 4 }, (_, i) =>
      fetch(`${srv.url}/v1/files/w${i}.png`, { method: 'PUT', body, duplex: 'half' } as RequestInit).then((r) => r.status),
    );
    let sawWaiting = 0;
    const watch = setInterval(() => (sawWaiting = Math.max(sawWaiting, srv.deps.budget.waiting)), 5);
    const statuses = await Promise.all(replies);
    clearInterval(watch);
    assert.deepEqual(statuses, [201, 201, 201, 201]);
    assert.equal(storage.maxActive, 2, 'never more than two uploads writing at once');
    assert.ok(sawWaiting >= 1, 'uploads queued for budget');
    assert.equal(srv.deps.budget.used, 0);
    assert.equal(storage.consumed, 4 * body.length);
  });

  it('an upload that waits longer than the queue timeout gets 503 BUSY with Retry-After', async () => {
    const srv = await serverWith((dir) => slowStorage(new FsStorage(dir), 1024 * 1024), {
      SLUICE_UPLOAD_BUFFER_BYTES: String(1024 * 1024),
      SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: '300',
    });
    const body = await pngOfSize(2 * 1024 * 1024);
    const first = fetch(`${srv.url}/v1/files/a.png`, { method: 'PUT', body });
    await until(() => srv.deps.budget.used > 0, 'the first upload to hold the budget');
    const second = await fetch(`${srv.url}/v1/files/b.png`, { method: 'PUT', body });
    assert.equal(second.status, 503);
    assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'BUSY');
    assert.ok(Number(second.headers.get('retry-after')) > 0);
    assert.equal((await first).status, 201);
  });
});
