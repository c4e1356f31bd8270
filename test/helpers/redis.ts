// A redis-server of the test's own (scripts/redis.ts): each suite that needs
// Redis starts one on a free loopback port, so no two suites share keys. The
// suite stops it in its own after hook.

export { startRedis, type RedisServer } from '../../scripts/redis.ts';
