// Redis connections (ioredis) built from the one RedisConfig. Each concern gets
// its own connection because their needs differ:
//   - commands (limits, leases): no offline queue, so a command fails at once
//     while Redis is down and the limits' fail-open/closed setting applies,
//     instead of piling up in memory and holding requests;
//   - subscriber: a connection in subscribe mode can issue nothing else;
//   - BullMQ: maxRetriesPerRequest null, as BullMQ requires for its blocking calls.
// Every connection reconnects forever with a capped backoff; errors are
// counted (sluice_redis_errors_total) and logged at most once per outage.

import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config.ts';
import type { CoreLog } from '../core/ingest.ts';

export type RedisRole = 'commands' | 'subscriber' | 'bullmq';

export interface RedisHooks {
  log: CoreLog;
  onError?: (role: RedisRole) => void;
}

/** Backoff between reconnection attempts: 100 ms doubling, capped at 2 s (a restarted Redis is found quickly). */
export function reconnectDelay(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 2000);
}

export function redisOptions(cfg: RedisConfig, role: RedisRole): RedisOptions {
  return {
    ...(cfg.username !== undefined ? { username: cfg.username } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    ...(cfg.tls ? { tls: cfg.tls.ca !== undefined ? { ca: cfg.tls.ca } : {} } : {}),
    connectionName: `sluice-${role}`,
    connectTimeout: 5_000,
    retryStrategy: reconnectDelay,
    enableOfflineQueue: role !== 'commands',
    maxRetriesPerRequest: role === 'bullmq' ? null : 1,
    lazyConnect: false,
  };
}

export function connectRedis(cfg: RedisConfig, role: RedisRole, hooks: RedisHooks): Redis {
  const client = new Redis(cfg.url, redisOptions(cfg, role));
  let down = false;
  client.on('error', (err: Error) => {
    hooks.onError?.(role);
    if (!down) hooks.log.warn({ err: { message: err.message }, redis: role }, 'redis unreachable; reconnecting');
    down = true;
  });
  client.on('ready', () => {
    if (down) hooks.log.info({ redis: role }, 'redis reachable again');
    down = false;
  });
  return client;
}

/** True when the connection is up and Redis answers a PING within `timeoutMs`. */
export async function redisAnswers(client: Redis, timeoutMs = 1000): Promise<boolean> {
  if (client.status !== 'ready') return false;
  try {
    const pong = await Promise.race([client.ping(), new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs).unref())]);
    return pong === 'PONG';
  } catch {
    return false;
  }
}

/** Close without waiting for Redis when it is unreachable (quit would wait for a reply that never comes). */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    await Promise.race([client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
  }
  client.disconnect();
}
