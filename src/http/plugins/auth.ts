// Authentication and authorization for every /v1 route, in one onRequest hook:
//   1. per-IP rate limit (before any credential work, so floods stay cheap);
//   2. routes marked `config.public` (signed links) stop here;
//   3. the token or API key is verified and checked against revocations;
//      request.tenant and request.principal are set;
//   4. per-subject rate limit;
//   5. the route's `config.scope` must be among the principal's scopes.
// A /v1 route that declares no scope is refused (fail closed) and logged.
// With no auth configured (loopback only, see config.ts) every request acts
// for DEFAULT_TENANT with every scope. The checks themselves live in
// src/core/auth/, which knows nothing of Fastify.

import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AppDeps } from '../types.ts';
import type { Scope } from '../../core/auth/scopes.ts';
import { Authenticator } from '../../core/auth/authenticator.ts';
import type { Principal } from '../../core/auth/principal.ts';
import { RevocationStore } from '../../core/auth/revocations.ts';
import { DEFAULT_TENANT } from '../../core/keys.ts';
import { isSluiceError, SluiceError } from '../../errors.ts';
import { RedisRevocationBus } from '../../redis/revocation-bus.ts';
import '../types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; undefined on public routes and when auth is off. */
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** The route needs no credentials (it checks its own signature, as signed links do). */
    public?: boolean;
  }
  interface FastifyInstance {
    /** Shared with the admin route, so a revocation takes effect at once on this instance. */
    revocations: RevocationStore;
    /** The rate limits, for routes that authenticate themselves (the S3 endpoint): by client IP, and by the caller once known. */
    rateLimits: { byIp(request: FastifyRequest): Promise<void>; bySubject(request: FastifyRequest): Promise<void> };
  }
}

type LimitCheck = (req: FastifyRequest) => Promise<{ isExceeded: boolean; ttlInSeconds: number; max: number }>;
interface Limiter {
  name: 'ip' | 'subject';
  check: LimitCheck;
}

async function authPlugin(app: FastifyInstance, { deps }: { deps: AppDeps }): Promise<void> {
  const sec = deps.config.security;
  const revocations = new RevocationStore(deps.storage, deps.config.keyPrefix, sec.revocationCacheMs);
  const authenticator = new Authenticator(sec, revocations);
  app.decorate('revocations', revocations);
  app.decorateRequest('principal', undefined);
  // With Redis, every instance drops a revoked entry from its cache as soon as any instance revokes it,
  // instead of serving it until its cache time runs out.
  if (deps.redis) await revocations.useBus(new RedisRevocationBus(deps.redis, app.log), app.log);

  if (!sec.authEnabled) {
    app.log.warn({ host: deps.config.host }, 'authentication is off: every request acts for the default tenant with every scope (allowed on loopback only)');
  }
  if (sec.links.ephemeralSecret) {
    app.log.warn('SLUICE_LINK_SECRET is not set: signed links use a random per-process key and stop working on restart or on other instances');
  }

  // global: false — limits are applied explicitly below, in a known order. With Redis the
  // windows are counted in @fastify/rate-limit's Redis store, so N per window holds across all instances.
  const store = deps.redis ? { redis: deps.redis.commands, nameSpace: `${deps.redis.key('rate')}:` } : {};
  await app.register(rateLimit, { global: false, ...store });
  const byIp = limiter(app, 'ip', sec.rateLimit.perIp, sec.rateLimit.windowMs, (r) => `ip:${r.ip}`);
  const bySubject = limiter(app, 'subject', sec.rateLimit.perSubject, sec.rateLimit.windowMs, (r) => `sub:${r.tenant}:${r.principal?.subject ?? ''}`);
  const failOpen = deps.config.redis?.limitsOnError !== 'closed';
  const enforce = async (limit: Limiter | undefined, request: FastifyRequest): Promise<void> => {
    if (!limit) return;
    let r: Awaited<ReturnType<LimitCheck>>;
    try {
      r = await limit.check(request);
    } catch (err) {
      // Only the Redis store fails; the in-process one cannot.
      if (isSluiceError(err)) throw err;
      deps.metrics?.limiterErrors.inc({ limiter: limit.name });
      if (failOpen) return;
      throw new SluiceError('LIMITS_UNAVAILABLE', { cause: err });
    }
    if (r.isExceeded) {
      deps.metrics?.limiterHits.inc({ limiter: limit.name });
      throw new SluiceError('RATE_LIMITED', { headers: { 'retry-after': String(Math.max(1, r.ttlInSeconds)) }, details: { limit: r.max } });
    }
  };

  app.decorate('rateLimits', { byIp: (request: FastifyRequest) => enforce(byIp, request), bySubject: (request: FastifyRequest) => enforce(bySubject, request) });

  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url;
    // Health, readiness, metrics, 404s and CORS preflights are not /v1 routes.
    if (url === undefined || !url.startsWith('/v1/')) return;
    await enforce(byIp, request);
    const cfg = request.routeOptions.config;
    if (cfg.public) return;
    const scope = cfg.scope as Scope | undefined;
    if (scope === undefined) {
      request.log.error({ url }, 'route declares no scope: refused');
      throw new SluiceError('INSUFFICIENT_SCOPE', { message: 'This route declares no scope and is closed' });
    }
    if (!sec.authEnabled) {
      request.tenant = DEFAULT_TENANT;
      return;
    }
    const principal = await authenticator.authenticate({
      authorization: request.headers.authorization,
      apiKey: headerString(request.headers['x-api-key']),
    });
    request.principal = principal;
    request.tenant = principal.tenant;
    request.log = request.log.child({ tenant: principal.tenant, sub: principal.subject });
    await enforce(bySubject, request);
    if (!principal.scopes.has(scope)) {
      throw new SluiceError('INSUFFICIENT_SCOPE', {
        details: { required: scope },
        headers: { 'www-authenticate': `Bearer error="insufficient_scope", scope="${scope}"` },
      });
    }
  });
}

function limiter(app: FastifyInstance, name: Limiter['name'], max: number, timeWindow: number, keyGenerator: (r: FastifyRequest) => string): Limiter | undefined {
  if (max === 0) return undefined;
  return { name, check: app.createRateLimit({ max, timeWindow, keyGenerator }) as LimitCheck };
}

function headerString(v: string | string[] | undefined): string | undefined {
  // A repeated X-API-Key is ambiguous: refuse rather than pick one.
  return Array.isArray(v) ? '\0' : v;
}

export const auth = fp(authPlugin, { name: 'sluice-auth', dependencies: ['sluice-error-handler'] });
