// The tenant quota shared through Redis: two ingest processes on one
// Redis and one storage. Each node trusts its copy of the storage usage record
// for 10 minutes here, so only the Redis counter can make one node see the
// other's commits and deletes in time. A counter that is gone (Redis flushed)
// is seeded again from the storage record.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { startNodes, type Nodes } from './helpers/nodes.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';

const QUOTA = 64 * 1024;

describe('tenant quota shared through Redis, two ingest nodes', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let cluster: Nodes;
  let acme: Record<string, string>;
  before(async () => {
    redis = await startRedis();
    const env = hsEnv({
      SLUICE_REDIS_URL: redis.url,
      SLUICE_TENANT_QUOTA_BYTES: String(QUOTA),
      SLUICE_TENANT_QUOTA_CACHE_MS: '600000',
      SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0',
    });
    cluster = await startNodes('redis-quota', env, ['ingest', 'ingest']);
    acme = bearer(await hsToken({ tenant: 'acme' }));
  });
  after(async () => {
    await cluster?.cleanup();
    await redis?.stop();
  });

  // Text with a fixed start: random base64 can begin with magic bytes and be refused.
  const text = (n: number) => Buffer.from(`text\n${randomBytes(n).toString('base64')}`.slice(0, n));
  const put = (url: string, n: number) =>
    call(`${url}/v1/files/data.txt`, { method: 'PUT', headers: { ...acme, 'content-type': 'text/plain' }, body: text(n) });

  test("one node's commits and deletes count on the other at once; a lost counter is seeded from storage", async () => {
    const [a, b] = cluster.nodes;
    // b reads the usage now and would trust that copy for 10 minutes without Redis.
    const small = await put(b!.url, 1024);
    assert.equal(small.status, 201, small.body.toString());
    assert.equal((await put(a!.url, 40 * 1024)).status, 201);
    const over = await put(b!.url, 30 * 1024);
    assert.equal(over.status, 507, over.body.toString());
    assert.equal(over.json<{ error: { code: string } }>().error.code, 'QUOTA_EXCEEDED');

    // Deleting on a frees the space on b.
    const list = await call(`${a!.url}/v1/files`, { headers: acme });
    const big = list.json<{ files: { id: string; size: number }[] }>().files.filter((f) => f.size === 40 * 1024);
    assert.equal(big.length, 1);
    assert.equal((await call(`${a!.url}/v1/files/${big[0]!.id}`, { method: 'DELETE', headers: acme })).status, 204);
    assert.equal((await put(b!.url, 30 * 1024)).status, 201);

    // Redis loses the counter: the next check seeds it from the storage record (~31 KiB used), so 40 KiB is refused.
    const c = new Redis(redis.url);
    try {
      assert.equal(await c.del('sluice:quota:acme'), 1);
      assert.equal((await put(a!.url, 40 * 1024)).status, 507);
      const seeded = Number(await c.get('sluice:quota:acme'));
      assert.ok(seeded >= 31 * 1024 && seeded < 40 * 1024, `seeded ${seeded}`);
    } finally {
      c.disconnect();
    }
  });
});
