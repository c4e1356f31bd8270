// Both upload-slot implementations run the same contract.

import { Redis } from 'ioredis';
import { pino } from 'pino';
import { EmbeddedUploadSlots } from '../../src/core/limits/embedded-upload-slots.ts';
import { RedisUploadSlots } from '../../src/redis/upload-slots.ts';
import { startRedis } from '../helpers/redis.ts';
import { uploadSlotsContract } from './upload-slots-contract.ts';

const silent = pino({ level: 'silent' });

uploadSlotsContract({
  name: 'embedded',
  async make(max) {
    const slots = new EmbeddedUploadSlots(max);
    return { a: slots, b: slots, cleanup: async () => {} };
  },
});

uploadSlotsContract({
  name: 'redis',
  async make(max) {
    const server = await startRedis();
    const ra = new Redis(server.url);
    const rb = new Redis(server.url);
    const opts = { prefix: 'contract', max, leaseMs: 30_000, failMode: 'closed' as const, log: silent };
    return {
      a: new RedisUploadSlots({ ...opts, redis: ra }),
      b: new RedisUploadSlots({ ...opts, redis: rb }),
      cleanup: async () => {
        ra.disconnect();
        rb.disconnect();
        await server.stop();
      },
    };
  },
});
