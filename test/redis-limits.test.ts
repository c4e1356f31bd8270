// Limits shared across instances: two ingest processes on one Redis.
// - a per-IP rate limit of N per window admits N requests in total across both;
// - a tenant's concurrent-upload cap holds across both;
// - SIGKILL of a node holding slots: its leases expire (a Redis keyspace event
//   says when) and the other node admits uploads again;
// - a revocation on one node is refused on the other as soon as its pub/sub
//   message arrives (long before the revocation cache time).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { apiKey, bearer, hsEnv, hsToken } from './helpers/auth.ts';
import { call } from './helpers/http.ts';
import { heldUpload, startNodes, type Nodes } from './helpers/nodes.ts';
import { startRedis, type RedisServer } from './helpers/redis.ts';

const LEASE_MS = 2000;

describe('limits and revocations shared through Redis, two ingest nodes', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let cluster: Nodes;
  const ops = apiKey('ops', 'acme', ['admin', 'files:read']);
  before(async () => {
    redis = await startRedis();
    const env = hsEnv({
      SLUICE_REDIS_URL: redis.url,
      SLUICE_RATE_LIMIT_PER_IP: '10',
      SLUICE_RATE_LIMIT_PER_SUBJECT: '0',
      SLUICE_RATE_LIMIT_WINDOW_MS: '600000',
      SLUICE_TENANT_MAX_CONCURRENT_UPLOADS: '2',
      SLUICE_UPLOAD_LEASE_MS: String(LEASE_MS),
      // Far longer than the test: only the pub/sub message can make the other node see a revocation in time.
      SLUICE_AUTH_REVOCATION_CACHE_MS: '600000',
      SLUICE_AUTH_API_KEYS: JSON.stringify([ops.entry]),
      SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0',
    });
    cluster = await startNodes('redis-limits', env, ['ingest', 'ingest']);
  });
  after(async () => {
    await cluster?.cleanup();
    await redis?.stop();
  });

  test('a rate limit of N per window admits N requests in total across both nodes', async () => {
    const [a, b] = cluster.nodes;
    const token = bearer(await hsToken({ sub: 'rl', tenant: 'ratelimit' }));
    let ok = 0;
    let limited = 0;
    for (let i = 0; i < 30; i++) {
      const node = i % 2 === 0 ? a! : b!;
      const r = await call(`${node.url}/v1/files`, { headers: token });
      if (r.status === 200) ok++;
      else {
        assert.equal(r.status, 429, r.body.toString());
        assert.equal(r.json<{ error: { code: string } }>().error.code, 'RATE_LIMITED');
        limited++;
      }
    }
    // The other tests' requests come from the same IP: they run after this one.
    assert.equal(ok, 10);
    assert.equal(limited, 20);
    const metrics = (await call(`${b!.url}/metrics`)).body.toString();
    assert.match(metrics, /sluice_limiter_hits_total\{limiter="ip"\} \d+/);
  });

  test("a tenant's concurrent cap holds across both nodes; a SIGKILLed node's slots free within the lease", async () => {
    await flushRate(redis);
    const [a, b] = cluster.nodes;
    const headers = { authorization: `Bearer ${await hsToken({ sub: 'u', tenant: 'capped' })}` };
    const onA = heldUpload(a!.port, headers);
    assert.equal(await onA.admitted, 100, onA.received());
    const onB = heldUpload(b!.port, headers);
    assert.equal(await onB.admitted, 100, onB.received());
    const third = heldUpload(a!.port, headers);
    assert.equal(await third.admitted, 429);
    const fourth = heldUpload(b!.port, headers);
    assert.equal(await fourth.admitted, 429);
    assert.equal(await onB.finish(), 201);
    const again = heldUpload(a!.port, headers);
    assert.equal(await again.admitted, 100); // b's slot came back at once
    // a now holds both slots. Kill it without letting it release anything.
    const watcher = new Redis(redis.url);
    await watcher.config('SET', 'notify-keyspace-events', 'Ex');
    const expired = new Promise<void>((resolve) => {
      watcher.on('message', (_ch: string, key: string) => {
        if (key === 'sluice:limits:uploads:capped') resolve();
      });
    });
    await watcher.subscribe('__keyevent@0__:expired');
    a!.proc.kill('SIGKILL');
    await a!.exited;
    const refused = heldUpload(b!.port, headers);
    assert.equal(await refused.admitted, 429, 'the dead node still holds its slots until the leases expire');
    await expired;
    const after = heldUpload(b!.port, headers);
    assert.equal(await after.admitted, 100);
    assert.equal(await after.finish(), 201);
    watcher.disconnect();
    for (const u of [onA, third, fourth, again, refused]) u.destroy();
    // A replacement for the killed node, for the next test.
    cluster.nodes.splice(0, 1, await cluster.add({ SLUICE_ROLE: 'ingest' }));
    cluster.nodes.push(a!); // still cleaned up
  });

  test('a revocation on one node is refused on the other once its message arrives', async () => {
    await flushRate(redis);
    const [a, b] = cluster.nodes;
    const leaked = bearer(await hsToken({ sub: 'mallory', tenant: 'acme' }));
    assert.equal((await call(`${b!.url}/v1/files`, { headers: leaked })).status, 200); // b caches "not revoked" for 10 minutes
    const seen = b!.waitForLog((l) => l.msg === 'revocation received', 30_000);
    const r = await call(`${a!.url}/v1/admin/revoke`, {
      method: 'POST',
      headers: { 'x-api-key': ops.key, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'mallory' }),
    });
    assert.equal(r.status, 200, r.body.toString());
    await seen;
    const refused = await call(`${b!.url}/v1/files`, { headers: leaked });
    assert.equal(refused.status, 401);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'TOKEN_REVOKED');
  });
});

/** Reset the per-IP windows, so one test's requests do not limit the next. */
async function flushRate(redis: RedisServer): Promise<void> {
  const c = new Redis(redis.url);
  const keys = await c.keys('sluice:rate:*');
  if (keys.length > 0) await c.del(...keys);
  c.disconnect();
}
