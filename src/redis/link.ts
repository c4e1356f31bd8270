// The two Redis connections an instance keeps for shared state (commands for
// limits and leases; a subscriber for revocation messages), made once per
// process from the config and closed with the app. BullMQ opens its own
// (jobs/bullmq-queue.ts): its blocking reads must not delay a limit check.

import type { Redis } from 'ioredis';
import type { RedisConfig } from '../config.ts';
import type { CoreLog } from '../core/ingest.ts';
import { closeRedis, connectRedis, redisAnswers, type RedisRole } from './connection.ts';

export class RedisLink {
  readonly config: RedisConfig;
  readonly commands: Redis;
  readonly subscriber: Redis;

  constructor(config: RedisConfig, log: CoreLog, onError?: (role: RedisRole) => void) {
    this.config = config;
    const hooks = { log, ...(onError ? { onError } : {}) };
    this.commands = connectRedis(config, 'commands', hooks);
    this.subscriber = connectRedis(config, 'subscriber', hooks);
  }

  /** A key under SLUICE_REDIS_PREFIX. */
  key(...parts: string[]): string {
    return [this.config.prefix, ...parts].join(':');
  }

  /** For /ready: Redis answers now. */
  ready(): Promise<boolean> {
    return redisAnswers(this.commands);
  }

  async close(): Promise<void> {
    await Promise.all([closeRedis(this.commands), closeRedis(this.subscriber)]);
  }
}
