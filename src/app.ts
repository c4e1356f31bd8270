// buildApp(config, deps): the Fastify app as a composition of plugins. No
// listening, no signals, no process.env: server.ts does those, tests call this.

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { BufferBudget } from './core/buffer-budget.ts';
import { DEFAULT_TENANT } from './core/keys.ts';
import { SluiceError, type ErrorCode } from './errors.ts';
import { errorHandler, sendError, toSluiceError } from './http/plugins/error-handler.ts';
import { auth } from './http/plugins/auth.ts';
import { hardening } from './http/plugins/hardening.ts';
import { uploadLimits } from './http/plugins/upload-limits.ts';
import { TenantQuota, withTenantQuota } from './core/tenant-quota.ts';
import { routes } from './http/routes/index.ts';
import type { AppDeps } from './http/types.ts';
import { createLogger } from './logger.ts';
import { conditionalWrites, type Storage } from './storage/storage.ts';
import { httpMetrics } from './http/plugins/http-metrics.ts';
import { loadShedding } from './http/plugins/load-shedding.ts';
import { SluiceMetrics } from './metrics.ts';
import { InstrumentedStorage } from './storage/instrumented.ts';

export async function defaultDeps(config: Readonly<Config>, storage: Storage, log: Logger = createLogger(config)): Promise<AppDeps> {
  const budget = new BufferBudget(config.uploadBufferBytes, config.maxActiveUploads);
  const metrics = config.ops.metrics ? new SluiceMetrics({ uvThreadpoolSize: config.ops.uvThreadpoolSize }) : undefined;
  // One pair of Redis connections per process (commands, and the subscriber pub/sub needs), errors counted per connection.
  // ioredis is imported only for a config with SLUICE_REDIS_URL (docs/performance.md, "Idle memory").
  const RedisLink = config.redis ? (await import('./redis/link.ts')).RedisLink : undefined;
  const redis = config.redis && RedisLink ? new RedisLink(config.redis, log.child({ component: 'redis' }), (role) => metrics?.redisErrors.inc({ connection: role })) : undefined;
  const shared = redis ? { redis } : {};
  if (!metrics) return { config, storage, budget, log, ...shared };
  // Storage operations are measured by wrapping the adapter, so every caller is counted.
  metrics.setSources({ budget: () => ({ used: budget.used, capacity: budget.capacity, waiting: budget.waiting }) });
  return { config, storage: new InstrumentedStorage(storage, metrics), budget, log, metrics, ...shared };
}

function withQuota(deps: AppDeps): { deps: AppDeps; quota: TenantQuota | undefined } {
  const { security, keyPrefix } = deps.config;
  if (security.tenantQuotaBytes === 0) return { deps, quota: undefined };
  const storage = conditionalWrites(deps.storage);
  const quota = new TenantQuota(storage, keyPrefix, security.tenantQuotaBytes, security.tenantQuotaCacheMs, deps.redis && {
    redis: deps.redis.commands,
    key: (tenant: string) => deps.redis!.key('quota', tenant),
  });
  return { deps: { ...deps, storage: withTenantQuota(storage, quota) }, quota };
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildApp(appDeps: AppDeps) {
  // With a tenant quota, every tenant write is metered through the storage port.
  const { deps, quota } = withQuota(appDeps);
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID_RE.test(incoming) ? incoming : randomUUID();
    },
    // Probes are polled every few seconds; two log lines per probe would drown the rest.
    logController: new LogController({ disableRequestLogging: (req: { url?: string }) => req.url === '/health' || req.url === '/ready' }),
    // The JSON routes take small bodies; upload routes bypass body parsing entirely.
    bodyLimit: 1024 * 1024,
    serverFactory: (handler) => createHttpServer(config, handler),
    // On close, drop idle keep-alive sockets at once; in-flight requests finish.
    forceCloseConnections: 'idle',
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => writeClientError(err, socket),
    // request.ip (rate limits, logs) from X-Forwarded-For only via listed proxies: anyone else could forge it.
    trustProxy: config.security.trustProxy.length > 0 ? [...config.security.trustProxy] : false,
    // The router's own refusals (bad %-encoding, overlong path parameter) in our error shape, not
    // Fastify's; and parameters as long as routes allow (PUT names take 1,024 characters, %-encoded up to 12 bytes each;
    // the default 100 refused names over 100 characters with a 414). The header size limit still bounds the URL.
    routerOptions: { maxParamLength: 12 * 1024 },
    frameworkErrors: (err, request, reply) => {
      void sendError(request, reply, toSluiceError(err));
    },
  });
  app.decorateRequest('tenant', DEFAULT_TENANT);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    // Routes that defer 100 Continue send it after their admission checks.
    if (!request.routeOptions.config.deferContinue && /^100-continue$/i.test(String(request.headers.expect ?? ''))) {
      reply.raw.writeContinue();
    }
  });
  if (deps.redis) {
    const link = deps.redis;
    app.addHook('onClose', () => link.close());
  }
  await app.register(errorHandler);
  // Before the routes, so their hooks and the OpenAPI collector see every route.
  await app.register(loadShedding, { shed: config.ops.shed, budget: deps.budget, metrics: deps.metrics });
  if (deps.metrics) await app.register(httpMetrics, { metrics: deps.metrics });
  // Loaded only when served: @fastify/swagger and its YAML writer stay out of a node with SLUICE_DOCS=false.
  if (config.ops.docs) await app.register((await import('./http/plugins/openapi.ts')).openApi);
  // Headers + CORS, then authentication (sets request.tenant), then the per-tenant upload cap, which needs the tenant.
  await app.register(hardening, { config });
  await app.register(auth, { deps });
  // SigV4 for /s3 (docs/s3-api.md); loaded only when the endpoint is on, as are its routes.
  if (config.s3Api) await app.register((await import('./s3api/s3-auth.ts')).s3Auth, { config: config.s3Api });
  await app.register(uploadLimits, { deps, quota });
  await app.register(routes, { deps, quota });
  return app;
}

/**
 * Node's defaults do not fit large uploads: requestTimeout (300 s) would cut
 * off a 5 GiB upload slower than ~17 MB/s. Uploads are guarded by an idle
 * timeout in the pipeline instead; headers must still arrive quickly.
 */
function createHttpServer(config: Readonly<Config>, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(
    {
      requestTimeout: 0,
      headersTimeout: config.timeouts.headersMs,
      // Enforce headersTimeout promptly (Node checks on this interval; default 30 s).
      connectionsCheckingInterval: Math.min(1000, config.timeouts.headersMs),
      keepAliveTimeout: 72_000,
      maxHeaderSize: config.limits.headerBytes,
    },
    handler,
  );
  server.timeout = config.timeouts.socketMs;
  // Past this many open sockets, new connections are closed at accept: a connection flood cannot exhaust file descriptors.
  if (config.security.maxConnections > 0) server.maxConnections = config.security.maxConnections;
  // Without this listener Node answers 100 Continue by itself, before we could refuse the body.
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  return server;
}

const CLIENT_ERROR_CODES: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
};

function writeClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const e = new SluiceError(CLIENT_ERROR_CODES[err.code ?? ''] ?? 'MALFORMED_REQUEST');
  const body = JSON.stringify({ error: { code: e.code, message: e.message } });
  socket.end(
    `HTTP/1.1 ${e.status} ${e.code}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export type SluiceApp = Awaited<ReturnType<typeof buildApp>>;
