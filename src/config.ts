// Every setting, parsed once at start-up from the environment into a frozen,
// typed Config that is passed down. Nothing else in the codebase reads
// process.env. A bad value stops the process with one line naming the variable.

import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { S3_PROVIDERS, S3_PROVIDER_PROFILES } from './storage/s3-providers.ts';
import { fitsParts } from './storage/s3-parts.ts';
import { apiKeyEntrySchema, type ApiKeyEntry } from './core/auth/api-keys.ts';
import { s3AccessKeyEntrySchema, type S3AccessKeyEntry } from './core/auth/s3-access-keys.ts';
import { COMPRESS_JOBS, CONVERT_JOBS, PRESET_FORMATS, type ImageFormat, type ImagePreset } from './core/job-names.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

/**
 * Default allowlist: common images, audio, video, PDF, archives and text.
 * Never executables or scripts. `type/*` wildcards are allowed in the setting.
 */
export const DEFAULT_ALLOWED_TYPES = [
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/heic', 'image/heif',
  'image/tiff', 'image/bmp', 'image/svg+xml', 'image/apng', 'image/jxl',
  'audio/mpeg', 'audio/ogg', 'audio/wav', 'audio/flac', 'audio/aac', 'audio/mp4', 'audio/x-m4a', 'audio/webm', 'audio/opus',
  'video/mp4', 'video/webm', 'video/quicktime', 'video/matroska', 'video/x-m4v', 'video/ogg', 'video/mpeg',
  'application/pdf',
  'application/zip', 'application/gzip', 'application/x-tar', 'application/x-7z-compressed', 'application/zstd',
  'application/x-bzip2', 'application/x-xz',
  'text/plain', 'text/csv', 'application/json', 'text/markdown',
];

// Each field: the variable, its default, what it does.
const envSchema = z.object({
  /** TCP port to listen on. */
  PORT: int(0, 65535).default(8080),
  /** Address to bind. Loopback by default: exposing the service is a deliberate choice. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  /** Storage backend: fs (default, under SLUICE_DATA_DIR) or s3 (default when SLUICE_S3_BUCKET is set). */
  SLUICE_STORAGE: z.enum(['fs', 's3']).optional(),
  /** Root directory of the fs backend. */
  SLUICE_DATA_DIR: z.string().min(1).default('./data'),
  /** Key prefix for everything sluice writes (no leading or trailing slash). */
  SLUICE_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'letters, digits, . _ - and inner slashes').default('sluice'),

  /** S3 endpoint URL; unset means AWS. */
  SLUICE_S3_ENDPOINT: z.url().optional(),
  SLUICE_S3_REGION: z.string().min(1).default('us-east-1'),
  SLUICE_S3_BUCKET: z.string().min(3).optional(),
  /** Static credentials; unset means the AWS SDK's default chain (env, profile, IMDS, ...). */
  SLUICE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  SLUICE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /**
   * Which S3 implementation the bucket lives on: sets the defaults of the checksum mode,
   * the part count limit, equal part sizes (R2) and path-style URLs (README "S3 providers").
   */
  SLUICE_S3_PROVIDER: z.enum(S3_PROVIDERS).default('generic'),
  /** Path-style URLs (http://host/bucket/key): MinIO and most S3-compatible stores want true. Default: the provider's. */
  SLUICE_S3_FORCE_PATH_STYLE: bool.optional(),
  /**
   * When the SDK computes request checksums: when_supported (SDK default, CRC32 on every
   * upload; AWS, MinIO) or when_required (R2, B2 and other stores that reject them).
   */
  SLUICE_S3_CHECKSUM: z.enum(['when_supported', 'when_required']).optional(),
  /** Most parts per multipart upload (S3: 10,000; Scaleway: 1,000). Default: the provider's. */
  SLUICE_S3_MAX_PARTS: int(1, 10_000).optional(),
  /** Multipart part size. Memory per upload is about part size × (queue size + 1). */
  SLUICE_S3_PART_SIZE: int(5 * MiB, 512 * MiB).default(8 * MiB),
  /** Parts uploaded concurrently per file. */
  SLUICE_S3_QUEUE_SIZE: int(1, 32).default(4),
  /**
   * How puts reach S3: parts (fixed-size reused part buffers, flat memory; default) or
   * lib-storage (@aws-sdk/lib-storage's Upload, which retains copies: aws-sdk-js-v3#8286).
   */
  SLUICE_S3_UPLOADER: z.enum(['parts', 'lib-storage']).default('parts'),

  /** Largest file accepted, in bytes. */
  SLUICE_MAX_FILE_BYTES: int(0).default(5 * GiB),
  /** Largest multipart request body, in bytes (all files and fields together). */
  SLUICE_MAX_REQUEST_BYTES: int(0).default(10 * GiB),
  /** Files per multipart request. */
  SLUICE_MAX_FILES: int(1, 10_000).default(20),
  /** Non-file fields per multipart request. */
  SLUICE_MAX_FIELDS: int(0, 10_000).default(50),
  /** Bytes per non-file field value. */
  SLUICE_MAX_FIELD_BYTES: int(1, 1 * MiB).default(64 * 1024),
  /** Parts (files + fields) per multipart request. */
  SLUICE_MAX_PARTS: int(1, 20_000).default(100),
  /** Header pairs per part. */
  SLUICE_MAX_PART_HEADER_PAIRS: int(1, 2000).default(32),
  /** Largest HTTP request header block, in bytes (Node's maxHeaderSize). */
  SLUICE_MAX_HEADER_BYTES: int(1024, 1 * MiB).default(16 * 1024),
  /** Refuse raw PUT uploads without a Content-Length (411) instead of accepting chunked bodies. */
  SLUICE_REQUIRE_CONTENT_LENGTH: bool.default(false),
  /** Allowed MIME types (comma-separated, `image/*` wildcards allowed). */
  SLUICE_ALLOWED_TYPES: list.optional(),

  /** An upload whose body sends nothing for this long is aborted with 408. */
  SLUICE_UPLOAD_IDLE_TIMEOUT_MS: int(100).default(30_000),
  /**
   * Total time one upload request (PUT, POST, tus PATCH) may take, from its headers to its
   * answer; past it the body is cut off with 408 UPLOAD_DEADLINE_EXCEEDED (tus: the bytes
   * stored so far stay resumable). The reaper relies on it: SLUICE_REAPER_MAX_AGE_MS must exceed it.
   */
  SLUICE_UPLOAD_DEADLINE_MS: int(1000).default(6 * 60 * 60_000),
  /** Time a client has to send the request headers (slowloris guard). */
  SLUICE_HEADERS_TIMEOUT_MS: int(100).default(10_000),
  /** Idle socket timeout outside uploads (keep-alive excepted). */
  SLUICE_SOCKET_TIMEOUT_MS: int(0).default(120_000),
  /**
   * Process-wide budget of upload bytes that may be buffered at once. Each upload
   * reserves min(Content-Length, part size × (queue size + 1)) before its body is
   * read; past the budget, uploads wait with their sockets paused.
   */
  SLUICE_UPLOAD_BUFFER_BYTES: int(1 * MiB).default(256 * MiB),
  /** How long an upload may wait for buffer budget before 503 BUSY. */
  SLUICE_UPLOAD_QUEUE_TIMEOUT_MS: int(0).default(30_000),
  /**
   * Uploads whose bodies are read at once (0: no cap, the byte budget alone decides). More
   * wait, like uploads past the byte budget, with their sockets paused and 100 Continue
   * withheld. Bounds the work one event-loop turn can find ready (docs/performance.md).
   */
  SLUICE_MAX_ACTIVE_UPLOADS: int(0).default(256),

  // --- processing jobs (docs/jobs.md) ---
  /** Worker threads running image and compression jobs. 0 disables processing entirely. */
  SLUICE_JOBS_POOL_SIZE: int(0, 64).optional(),
  /** Files whose jobs may wait in memory; past it, jobs stay pending in storage and a later rescan picks them up. */
  SLUICE_JOBS_QUEUE_MAX: int(1, 100_000).default(1000),
  /** Time limit of one job, in ms; past it the job fails with JOB_TIMEOUT (and is retried). */
  SLUICE_JOBS_TIMEOUT_MS: int(1000).default(120_000),
  /** Attempts per job before it is recorded as failed (crashes and transient errors count). */
  SLUICE_JOBS_MAX_ATTEMPTS: int(1, 20).default(3),
  /** How often the index of unfinished work is rescanned (overflow and other instances' leftovers). */
  SLUICE_JOBS_RESCAN_MS: int(1000).default(60_000),
  /** Jobs per type when an upload names none: `type=job+job;...`, type may be `image/*`. First match wins. */
  SLUICE_JOBS_DEFAULTS: z.string().default('image/*=thumbnail;text/*=gzip;application/json=gzip').transform(parseDefaultRules),
  /** Resize presets `name:px:format,...` (fit inside px×px, never enlarged); each preset is a job name. */
  SLUICE_IMAGE_PRESETS: z.string().default('thumbnail:256:webp,preview:1024:webp').transform(parsePresets),
  /** Largest decoded image, in pixels (width × height × frames); sharp's own default is 268 M. */
  SLUICE_IMAGE_MAX_PIXELS: int(1, 268_402_689).default(40_000_000),
  /** Largest original an image job reads (sharp holds the encoded input in memory). */
  // Bounds the spool file and decode time of one job, not memory: libvips reads the original from a file (workers/image-input.ts).
  SLUICE_IMAGE_MAX_INPUT_BYTES: int(1).default(1024 * MiB),
  /** sharp failOn: how much invalid pixel data aborts a job (none, truncated, error, warning). */
  SLUICE_IMAGE_FAIL_ON: z.enum(['none', 'truncated', 'error', 'warning']).default('error'),
  /** libvips threads per image job (sharp.concurrency), per worker thread. */
  SLUICE_SHARP_CONCURRENCY: int(1, 64).default(1),
  /** Completion webhook: POSTed each file's manifest once its jobs have all ended. Unset: no webhook. */
  SLUICE_WEBHOOK_URL: z.url().optional(),
  /** HMAC-SHA256 key for the X-Sluice-Signature header; required with SLUICE_WEBHOOK_URL. */
  SLUICE_WEBHOOK_SECRET: z.string().min(16).optional(),
  /** Delivery attempts before the webhook is recorded as failed. */
  SLUICE_WEBHOOK_MAX_ATTEMPTS: int(1, 50).default(8),
  /** First retry delay in ms; doubles per attempt, capped at 5 minutes. */
  SLUICE_WEBHOOK_BACKOFF_MS: int(10).default(1000),
  /** Per-attempt timeout of a webhook POST. */
  SLUICE_WEBHOOK_TIMEOUT_MS: int(100).default(10_000),
  // --- security: authentication, links, abuse limits, hardening (docs/security.md) ---
  // Every secret may instead be given as a file: set <NAME>_FILE to its path.
  /** HS256 shared secret for bearer JWTs (at least 32 bytes). */
  SLUICE_AUTH_JWT_SECRET: z.string().min(32, 'at least 32 bytes').optional(),
  /** JWKS URL for RS256/ES256 JWTs; keys are refetched when a token names an unknown kid (rotation). */
  SLUICE_AUTH_JWKS_URL: z.url().optional(),
  /** Asymmetric algorithms accepted with the JWKS (HS256 is accepted only with the shared secret). */
  SLUICE_AUTH_JWT_ALGORITHMS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).min(1))
    .default(['RS256', 'ES256']),
  /** Required `iss` of JWTs. Required when JWTs are configured. */
  SLUICE_AUTH_ISSUER: z.string().min(1).optional(),
  /** Required `aud` of JWTs. Required when JWTs are configured. */
  SLUICE_AUTH_AUDIENCE: z.string().min(1).optional(),
  /** Clock skew tolerated on `exp`/`nbf`, in seconds. */
  SLUICE_AUTH_CLOCK_SKEW_S: int(0, 300).default(30),
  /** JWT claim naming the tenant (validated: lowercase letters, digits, dashes). */
  SLUICE_AUTH_TENANT_CLAIM: z.string().min(1).default('tenant'),
  /** How long fetched JWKS keys are trusted before a refetch, in ms. */
  SLUICE_AUTH_JWKS_CACHE_MS: int(1000).default(10 * 60_000),
  /** Least time between two JWKS fetches (an unknown kid triggers one), in ms. */
  SLUICE_AUTH_JWKS_COOLDOWN_MS: int(0).default(30_000),
  /** Static API keys: a JSON array of { id, sha256, tenant, scopes, createdAt? } (see `npm run api-key`). */
  SLUICE_AUTH_API_KEYS: z
    .string()
    .min(2)
    .transform(parseJson('expected an array of { id, sha256, tenant, scopes }'))
    .pipe(z.array(apiKeyEntrySchema).refine((keys) => new Set(keys.map((k) => k.id)).size === keys.length, 'duplicate id'))
    .optional(),
  /** How long a revocation read from storage is trusted, in ms: a bump reaches every instance within it. */
  SLUICE_AUTH_REVOCATION_CACHE_MS: int(0, 10 * 60_000).default(10_000),
  /** HMAC key for signed download links (at least 32 bytes). Unset: a random per-process key (links die on restart). */
  SLUICE_LINK_SECRET: z.string().min(32, 'at least 32 bytes').optional(),
  /** Default and longest lifetime of a signed link, in seconds. */
  SLUICE_LINK_DEFAULT_TTL_S: int(1, 7 * 86_400).default(3600),
  SLUICE_LINK_MAX_TTL_S: int(1, 30 * 86_400).default(7 * 86_400),
  /** Public base URL for signed links (https://files.example.com); unset: taken from the request's Host. */
  SLUICE_PUBLIC_URL: z.url().optional(),
  /** Requests per window per client IP on /v1 routes (0: no limit). */
  SLUICE_RATE_LIMIT_PER_IP: int(0).default(12_000),
  /** Requests per window per authenticated subject (token or API key; 0: no limit). */
  SLUICE_RATE_LIMIT_PER_SUBJECT: int(0).default(12_000),
  SLUICE_RATE_LIMIT_WINDOW_MS: int(1000).default(60_000),
  /** Uploads one tenant may run at once (0: no cap); more get 429 TOO_MANY_UPLOADS. */
  SLUICE_TENANT_MAX_CONCURRENT_UPLOADS: int(0).default(16),
  /** Bytes each tenant may store (0: no quota); past it uploads get 507 QUOTA_EXCEEDED. */
  SLUICE_TENANT_QUOTA_BYTES: int(0).default(0),
  /** How long an instance trusts its copy of a tenant's usage record before reading it again, in ms. */
  SLUICE_TENANT_QUOTA_CACHE_MS: int(0).default(30_000),
  /** Open connections the server accepts at once (0: no cap); more are refused at accept. */
  SLUICE_MAX_CONNECTIONS: int(0).default(1024),
  /** Origins allowed by CORS (comma-separated, exact, e.g. https://app.example.com); unset: no CORS. */
  SLUICE_CORS_ORIGINS: list.optional(),
  /** Proxies whose X-Forwarded-For is trusted (comma-separated IPs/CIDRs); unset: none. */
  SLUICE_TRUST_PROXY: list.optional(),
  // --- end security ---
  // --- resumable uploads (tus, docs/tus.md) ---
  /** A tus upload not finished this long after creation expires (410) and is removed by the sweep. */
  SLUICE_TUS_EXPIRY_MS: int(1000).default(24 * 60 * 60 * 1000),
  /**
   * Local disk all PATCH bodies with an Upload-Checksum may take at once while they are
   * verified (each is spooled to the temp dir whole); past it, 507 CHECKSUM_SPOOL_FULL.
   * One PATCH larger than this is always refused: clients send smaller chunks.
   */
  SLUICE_TUS_CHECKSUM_SPOOL_BYTES: int(1 * MiB).default(8 * GiB),
  /** How often this instance runs the expiry sweep; 0 turns the timer off (call sweepExpiredUploads yourself). */
  SLUICE_TUS_SWEEP_INTERVAL_MS: int(0).default(10 * 60 * 1000),
  /**
   * Who serialises writes to one tus upload: `bucket` (S3 only, default there: a lock object
   * in the bucket, safe with any number of instances) or `process` (in-memory, the fs
   * default; on S3 only with a single instance or sticky routing by upload URL).
   */
  SLUICE_TUS_LOCK: z.enum(['bucket', 'process']).optional(),
  /**
   * How long a tus request waits for its upload's lock (held by another PATCH, or by the
   * finish of that upload: read-back and commit) before it is answered 423 UPLOAD_LOCKED.
   */
  SLUICE_TUS_LOCK_TIMEOUT_MS: int(100).default(20_000),
  // --- S3-compatible endpoint at /s3 (docs/s3-api.md) ---
  /** Access keys of the S3 endpoint: a JSON array of { id, tenant, scopes, createdAt? } (see `npm run api-key -- --s3`). Unset: no /s3 routes. */
  SLUICE_S3API_ACCESS_KEYS: z
    .string()
    .min(2)
    .transform(parseJson('expected an array of { id, tenant, scopes }'))
    .pipe(z.array(s3AccessKeyEntrySchema).refine((keys) => new Set(keys.map((k) => k.id)).size === keys.length, 'duplicate id'))
    .optional(),
  /** Server secret every S3 access key's secret is derived from (at least 32 bytes); required with the keys. */
  SLUICE_S3API_SECRET: z.string().min(32, 'at least 32 bytes').optional(),
  /** Longest lifetime of a presigned URL the endpoint accepts, in seconds (SigV4 allows 7 days). */
  SLUICE_S3API_MAX_PRESIGN_S: int(1, 7 * 86_400).default(7 * 86_400),
  // --- operations: shutdown, metrics, reaper, load shedding, cluster (docs/operations.md) ---
  /** Time in-flight requests get to finish after SIGTERM/SIGINT before uploads are aborted. */
  SLUICE_SHUTDOWN_GRACE_MS: int(0).default(30_000),
  /** After SIGTERM, keep listening (with /ready 503) this long so a load balancer notices, then stop accepting. */
  SLUICE_SHUTDOWN_DRAIN_DELAY_MS: int(0).default(0),
  /** After the grace period, time aborted uploads get to clean storage up (S3 waits for parts in flight). */
  SLUICE_SHUTDOWN_ABORT_MS: int(0).default(15_000),
  /** Serve Prometheus metrics at /metrics. */
  SLUICE_METRICS: bool.default(true),
  /** How often the reaper sweeps stale work (pending multipart uploads, temp files, uncommitted originals); 0 disables. */
  SLUICE_REAPER_INTERVAL_MS: int(0).default(60 * 60_000),
  /**
   * Stale work older than this is removed. Must exceed the longest upload, so start-up refuses
   * a value not above SLUICE_TUS_EXPIRY_MS and SLUICE_UPLOAD_DEADLINE_MS.
   */
  SLUICE_REAPER_MAX_AGE_MS: int(1000).default(48 * 60 * 60_000),
  /** Shed load (503 + Retry-After) when the mean event-loop delay passes this; 0 disables. */
  SLUICE_SHED_EVENT_LOOP_DELAY_MS: int(0).default(1000),
  /** Shed load when V8 heap used passes this many bytes; 0 disables. */
  SLUICE_SHED_HEAP_BYTES: int(0).default(0),
  /** Shed load when resident memory passes this many bytes; 0 disables. */
  SLUICE_SHED_RSS_BYTES: int(0).default(0),
  /** Shed load when this many uploads wait for buffer budget; 0 disables (they wait up to SLUICE_UPLOAD_QUEUE_TIMEOUT_MS). */
  SLUICE_SHED_UPLOAD_WAITERS: int(0).default(0),
  /** Processes to run (node:cluster, sharing the port); `--workers N` on the command line sets it too. */
  SLUICE_WORKERS: int(1, 256).default(1),
  /** The cluster gives up (exits 1) when workers die more often than this within a minute. */
  SLUICE_WORKER_MAX_RESTARTS: int(0).default(5),
  /**
   * libuv threadpool size (fs, zlib, dns.lookup, sharp's async calls). Read by libuv at its
   * first use, so src/server.ts applies it before anything else loads; see docs/operations.md.
   */
  UV_THREADPOOL_SIZE: int(1, 1024).default(4),
  /** Serve the OpenAPI description at /docs (JSON at /docs/openapi.json). */
  SLUICE_DOCS: bool.default(true),
  /**
   * Connections the kernel may queue before the process accepts them (listen backlog; the
   * kernel caps it at net.core.somaxconn). Past it, new connections are dropped or, with SYN
   * cookies, reset; Node's default of 511 is overrun by a few hundred ms of a busy loop at
   * 2,000 connects/s (docs/performance.md).
   */
  SLUICE_LISTEN_BACKLOG: int(1, 65535).default(4096),
  // --- end operations ---
  // --- beyond one machine: Redis, BullMQ, roles (what must be shared beyond the bucket); docs/operations.md ---
  /** What this node does: ingest (uploads, downloads; no pool), worker (the job pool; only /health, /ready, /metrics) or all. */
  SLUICE_ROLE: z.enum(['ingest', 'worker', 'all']).default('all'),
  /** redis:// or rediss:// (TLS) URL of a Redis or Valkey; unset: everything stays in this process (embedded). */
  SLUICE_REDIS_URL: z.url().refine((u) => /^rediss?:\/\//.test(u), 'a redis:// or rediss:// URL').optional(),
  /** ACL user and password, if not in the URL (SLUICE_REDIS_PASSWORD_FILE works too). */
  SLUICE_REDIS_USERNAME: z.string().min(1).optional(),
  SLUICE_REDIS_PASSWORD: z.string().min(1).optional(),
  /** TLS even with a redis:// URL (rediss:// always uses it). */
  SLUICE_REDIS_TLS: bool.default(false),
  /** PEM file of the CA that signed the Redis server's certificate (private CAs); unset: the system CAs. Read at start-up. */
  SLUICE_REDIS_TLS_CA_FILE: z.string().min(1).transform(readPemFile).optional(),
  /** Prefix of every Redis key sluice writes (limits, leases, BullMQ queues). */
  SLUICE_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('sluice'),
  /** While Redis is unreachable, rate limits and upload caps are skipped (open) or answer 503 LIMITS_UNAVAILABLE (closed). */
  SLUICE_REDIS_LIMITS_ON_ERROR: z.enum(['open', 'closed']).default('open'),
  /** Lifetime of a tenant's upload slot in Redis, renewed every third of it while the upload runs; a dead node's slots free within it. */
  SLUICE_UPLOAD_LEASE_MS: int(1000, 10 * 60_000).default(30_000),
  /** BullMQ job lock, renewed by its worker every half; also the stalled-job check interval. A killed worker's jobs go to another within about twice this. */
  SLUICE_JOBS_LOCK_MS: int(500, 10 * 60_000).default(30_000),
  // --- end beyond one machine ---
});

const PRESET_RE = new RegExp(`^([a-z][a-z0-9-]{0,31}):(\\d{1,5}):(${PRESET_FORMATS.join('|')})$`);
const DEFAULT_RULE_RE = /^([a-z*]+\/[a-z0-9.+*-]+)=([a-z0-9+-]*)$/;

function parsePresets(raw: string, ctx: z.RefinementCtx): ImagePreset[] {
  const out: ImagePreset[] = [];
  for (const s of raw.split(',').map((x) => x.trim()).filter(Boolean)) {
    const m = PRESET_RE.exec(s);
    if (!m || Number(m[2]) < 1) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not name:px:format (format ${PRESET_FORMATS.join(', ')})` });
      return z.NEVER;
    }
    out.push({ name: m[1]!, size: Number(m[2]), format: m[3] as ImageFormat });
  }
  return out;
}

/** Ordered rules: the first whose type pattern matches gives the default jobs. */
function parseDefaultRules(raw: string, ctx: z.RefinementCtx): { type: string; jobs: string[] }[] {
  const out: { type: string; jobs: string[] }[] = [];
  for (const s of raw.split(';').map((x) => x.trim()).filter(Boolean)) {
    const m = DEFAULT_RULE_RE.exec(s);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not type=job+job` });
      return z.NEVER;
    }
    out.push({ type: m[1]!, jobs: m[2]!.split('+').filter(Boolean) });
  }
  return out;
}

function readPemFile(file: string, ctx: z.RefinementCtx): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    return z.NEVER;
  }
}

function parseJson(expected: string) {
  return (raw: string, ctx: z.RefinementCtx): unknown => {
    try {
      return JSON.parse(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not JSON (${expected})` });
      return z.NEVER;
    }
  };
}

type Env = Record<string, string | undefined>;
type ParsedEnv = z.output<typeof envSchema>;
export type { Env };

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

const storageKind = (e: ParsedEnv): 'fs' | 's3' => e.SLUICE_STORAGE ?? (e.SLUICE_S3_BUCKET ? 's3' : 'fs');
const jwtConfigured = (e: ParsedEnv): boolean => e.SLUICE_AUTH_JWT_SECRET !== undefined || e.SLUICE_AUTH_JWKS_URL !== undefined;
const authConfigured = (e: ParsedEnv): boolean => jwtConfigured(e) || (e.SLUICE_AUTH_API_KEYS?.length ?? 0) > 0;

/** Rules between variables; each refusal names the variable to change. Issues marked `relation` do not echo a value. */
function checkRelations(e: ParsedEnv, ctx: z.RefinementCtx): void {
  const refuse = (name: string, message: string) => ctx.addIssue({ code: 'custom', path: [name], message, params: { relation: true } });
  const kind = storageKind(e);
  if (kind === 's3' && !e.SLUICE_S3_BUCKET) refuse('SLUICE_S3_BUCKET', 'required when SLUICE_STORAGE=s3');
  if (kind === 'fs' && e.SLUICE_TUS_LOCK === 'bucket') refuse('SLUICE_TUS_LOCK', 'bucket needs the S3 backend');
  if ((e.SLUICE_S3_ACCESS_KEY_ID === undefined) !== (e.SLUICE_S3_SECRET_ACCESS_KEY === undefined)) {
    refuse('SLUICE_S3_SECRET_ACCESS_KEY', 'set both SLUICE_S3_ACCESS_KEY_ID and SLUICE_S3_SECRET_ACCESS_KEY, or neither');
  }
  if (kind === 's3') {
    const profile = S3_PROVIDER_PROFILES[e.SLUICE_S3_PROVIDER];
    const maxParts = e.SLUICE_S3_MAX_PARTS ?? profile.maxParts;
    if (!fitsParts(e.SLUICE_MAX_FILE_BYTES, { maxParts, maxPartSize: profile.maxPartSize, equalParts: profile.equalParts })) {
      refuse('SLUICE_MAX_FILE_BYTES', `more than ${maxParts} parts of at most ${profile.maxPartSize} bytes hold (SLUICE_S3_MAX_PARTS, SLUICE_S3_PROVIDER)`);
    }
    if (e.SLUICE_S3_PART_SIZE < profile.minPartSize) refuse('SLUICE_S3_PART_SIZE', `${e.SLUICE_S3_PROVIDER} needs parts of at least ${profile.minPartSize} bytes`);
  }

  const known = new Set<string>([...CONVERT_JOBS, ...COMPRESS_JOBS]);
  for (const p of e.SLUICE_IMAGE_PRESETS) {
    if (known.has(p.name)) refuse('SLUICE_IMAGE_PRESETS', `${p.name} is a built-in job name or a duplicate`);
    known.add(p.name);
  }
  for (const rule of e.SLUICE_JOBS_DEFAULTS) {
    const unknown = rule.jobs.find((j) => !known.has(j));
    if (unknown) refuse('SLUICE_JOBS_DEFAULTS', `unknown job ${JSON.stringify(unknown)} (known: ${[...known].join(', ')})`);
  }
  if (e.SLUICE_WEBHOOK_URL && !e.SLUICE_WEBHOOK_SECRET) refuse('SLUICE_WEBHOOK_SECRET', 'required with SLUICE_WEBHOOK_URL');

  if (jwtConfigured(e) && (!e.SLUICE_AUTH_ISSUER || !e.SLUICE_AUTH_AUDIENCE)) {
    refuse('SLUICE_AUTH_ISSUER/SLUICE_AUTH_AUDIENCE', 'both are required when JWTs are configured');
  }
  if (!authConfigured(e) && !isLoopbackHost(e.HOST)) {
    refuse(
      'HOST',
      `refusing to listen on ${e.HOST} without authentication; set SLUICE_AUTH_JWT_SECRET, SLUICE_AUTH_JWKS_URL or SLUICE_AUTH_API_KEYS, or HOST=127.0.0.1 for local use`,
    );
  }
  // The reaper removes folders without a manifest older than its max age: anything that may still be written to must be younger.
  for (const other of ['SLUICE_TUS_EXPIRY_MS', 'SLUICE_UPLOAD_DEADLINE_MS'] as const) {
    if (e.SLUICE_REAPER_MAX_AGE_MS <= e[other]) {
      refuse('SLUICE_REAPER_MAX_AGE_MS', `${e.SLUICE_REAPER_MAX_AGE_MS} must exceed ${other} (${e[other]}), or the reaper removes uploads still in flight`);
    }
  }
  if (e.SLUICE_S3API_ACCESS_KEYS !== undefined && e.SLUICE_S3API_SECRET === undefined) refuse('SLUICE_S3API_SECRET', 'required with SLUICE_S3API_ACCESS_KEYS');
  if (e.SLUICE_LINK_DEFAULT_TTL_S > e.SLUICE_LINK_MAX_TTL_S) refuse('SLUICE_LINK_DEFAULT_TTL_S', 'longer than SLUICE_LINK_MAX_TTL_S');
  if (e.SLUICE_ROLE === 'worker' && e.SLUICE_JOBS_POOL_SIZE === 0) refuse('SLUICE_JOBS_POOL_SIZE', 'a worker node (SLUICE_ROLE=worker) needs a pool');
}

/** Shared state across instances; undefined without SLUICE_REDIS_URL: embedded, per process. */
function redisConfig(e: ParsedEnv) {
  if (e.SLUICE_REDIS_URL === undefined) return undefined;
  const ca = e.SLUICE_REDIS_TLS_CA_FILE;
  const tlsOn = e.SLUICE_REDIS_TLS || e.SLUICE_REDIS_URL.startsWith('rediss://') || ca !== undefined;
  return {
    url: e.SLUICE_REDIS_URL,
    username: e.SLUICE_REDIS_USERNAME,
    password: e.SLUICE_REDIS_PASSWORD,
    /** undefined: plain TCP. */
    tls: tlsOn ? { ca } : undefined,
    prefix: e.SLUICE_REDIS_PREFIX,
    limitsOnError: e.SLUICE_REDIS_LIMITS_ON_ERROR,
    uploadLeaseMs: e.SLUICE_UPLOAD_LEASE_MS,
    /** BullMQ lockDuration and stalledInterval of the job workers. */
    jobLockMs: e.SLUICE_JOBS_LOCK_MS,
  };
}

function securityConfig(e: ParsedEnv) {
  return {
    /** False when no JWT secret, JWKS or API key is configured: open, loopback only. */
    authEnabled: authConfigured(e),
    jwt: {
      secret: e.SLUICE_AUTH_JWT_SECRET,
      jwksUrl: e.SLUICE_AUTH_JWKS_URL,
      algorithms: e.SLUICE_AUTH_JWT_ALGORITHMS as readonly string[],
      issuer: e.SLUICE_AUTH_ISSUER,
      audience: e.SLUICE_AUTH_AUDIENCE,
      clockSkewS: e.SLUICE_AUTH_CLOCK_SKEW_S,
      tenantClaim: e.SLUICE_AUTH_TENANT_CLAIM,
      jwksCacheMs: e.SLUICE_AUTH_JWKS_CACHE_MS,
      jwksCooldownMs: e.SLUICE_AUTH_JWKS_COOLDOWN_MS,
    },
    apiKeys: (e.SLUICE_AUTH_API_KEYS ?? []) as readonly ApiKeyEntry[],
    revocationCacheMs: e.SLUICE_AUTH_REVOCATION_CACHE_MS,
    links: {
      secret: e.SLUICE_LINK_SECRET ?? randomBytes(32).toString('base64url'),
      ephemeralSecret: e.SLUICE_LINK_SECRET === undefined,
      defaultTtlS: e.SLUICE_LINK_DEFAULT_TTL_S,
      maxTtlS: e.SLUICE_LINK_MAX_TTL_S,
      publicUrl: e.SLUICE_PUBLIC_URL?.replace(/\/+$/, ''),
    },
    rateLimit: { perIp: e.SLUICE_RATE_LIMIT_PER_IP, perSubject: e.SLUICE_RATE_LIMIT_PER_SUBJECT, windowMs: e.SLUICE_RATE_LIMIT_WINDOW_MS },
    tenantMaxConcurrentUploads: e.SLUICE_TENANT_MAX_CONCURRENT_UPLOADS,
    /** 0: no quota. */
    tenantQuotaBytes: e.SLUICE_TENANT_QUOTA_BYTES,
    tenantQuotaCacheMs: e.SLUICE_TENANT_QUOTA_CACHE_MS,
    maxConnections: e.SLUICE_MAX_CONNECTIONS,
    corsOrigins: (e.SLUICE_CORS_ORIGINS ?? []) as readonly string[],
    trustProxy: (e.SLUICE_TRUST_PROXY ?? []) as readonly string[],
  };
}

function jobsConfig(e: ParsedEnv) {
  return {
    poolSize: e.SLUICE_JOBS_POOL_SIZE ?? Math.max(1, availableParallelism() - 1),
    queueMax: e.SLUICE_JOBS_QUEUE_MAX,
    timeoutMs: e.SLUICE_JOBS_TIMEOUT_MS,
    maxAttempts: e.SLUICE_JOBS_MAX_ATTEMPTS,
    rescanMs: e.SLUICE_JOBS_RESCAN_MS,
    /** Ordered rules: the first whose type pattern matches gives the default jobs. */
    defaults: e.SLUICE_JOBS_DEFAULTS as readonly { type: string; jobs: readonly string[] }[],
    presets: e.SLUICE_IMAGE_PRESETS as readonly ImagePreset[],
    image: { maxPixels: e.SLUICE_IMAGE_MAX_PIXELS, maxInputBytes: e.SLUICE_IMAGE_MAX_INPUT_BYTES, failOn: e.SLUICE_IMAGE_FAIL_ON, sharpConcurrency: e.SLUICE_SHARP_CONCURRENCY },
    uvThreadpoolSize: e.UV_THREADPOOL_SIZE,
    webhook:
      e.SLUICE_WEBHOOK_URL && e.SLUICE_WEBHOOK_SECRET
        ? {
            url: e.SLUICE_WEBHOOK_URL,
            secret: e.SLUICE_WEBHOOK_SECRET,
            maxAttempts: e.SLUICE_WEBHOOK_MAX_ATTEMPTS,
            backoffMs: e.SLUICE_WEBHOOK_BACKOFF_MS,
            timeoutMs: e.SLUICE_WEBHOOK_TIMEOUT_MS,
          }
        : undefined,
  };
}

function s3Config(e: ParsedEnv) {
  const profile = S3_PROVIDER_PROFILES[e.SLUICE_S3_PROVIDER];
  return {
    /** Unset means AWS. */
    endpoint: e.SLUICE_S3_ENDPOINT,
    region: e.SLUICE_S3_REGION,
    bucket: e.SLUICE_S3_BUCKET ?? '',
    accessKeyId: e.SLUICE_S3_ACCESS_KEY_ID,
    secretAccessKey: e.SLUICE_S3_SECRET_ACCESS_KEY,
    forcePathStyle: e.SLUICE_S3_FORCE_PATH_STYLE ?? profile.forcePathStyle,
    checksum: e.SLUICE_S3_CHECKSUM ?? profile.checksum,
    partSize: e.SLUICE_S3_PART_SIZE,
    queueSize: e.SLUICE_S3_QUEUE_SIZE,
    uploader: e.SLUICE_S3_UPLOADER,
    provider: e.SLUICE_S3_PROVIDER,
    /** The provider's part rules (s3-parts.ts plans part sizes within them). */
    maxParts: e.SLUICE_S3_MAX_PARTS ?? profile.maxParts,
    minPartSize: profile.minPartSize,
    maxPartSize: profile.maxPartSize,
    equalParts: profile.equalParts,
    /** The largest object sluice puts (SLUICE_MAX_FILE_BYTES): part sizes are planned so it fits. */
    maxObjectBytes: e.SLUICE_MAX_FILE_BYTES,
  };
}

function toConfig(e: ParsedEnv) {
  const kind = storageKind(e);
  const storage: { kind: 'fs'; dataDir: string } | { kind: 's3'; s3: ReturnType<typeof s3Config> } =
    kind === 's3' ? { kind: 's3', s3: s3Config(e) } : { kind: 'fs', dataDir: e.SLUICE_DATA_DIR };
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    keyPrefix: e.SLUICE_KEY_PREFIX,
    storage,
    /** Part size and queue size also bound the fs backend's write buffering. */
    partSize: e.SLUICE_S3_PART_SIZE,
    queueSize: e.SLUICE_S3_QUEUE_SIZE,
    limits: {
      fileBytes: e.SLUICE_MAX_FILE_BYTES,
      requestBytes: e.SLUICE_MAX_REQUEST_BYTES,
      files: e.SLUICE_MAX_FILES,
      fields: e.SLUICE_MAX_FIELDS,
      fieldBytes: e.SLUICE_MAX_FIELD_BYTES,
      parts: e.SLUICE_MAX_PARTS,
      partHeaderPairs: e.SLUICE_MAX_PART_HEADER_PAIRS,
      headerBytes: e.SLUICE_MAX_HEADER_BYTES,
    },
    allowedTypes: (e.SLUICE_ALLOWED_TYPES ?? DEFAULT_ALLOWED_TYPES) as readonly string[],
    requireContentLength: e.SLUICE_REQUIRE_CONTENT_LENGTH,
    timeouts: {
      uploadIdleMs: e.SLUICE_UPLOAD_IDLE_TIMEOUT_MS,
      headersMs: e.SLUICE_HEADERS_TIMEOUT_MS,
      socketMs: e.SLUICE_SOCKET_TIMEOUT_MS,
      uploadQueueMs: e.SLUICE_UPLOAD_QUEUE_TIMEOUT_MS,
      /** Total time of one upload request (headers to answer). */
      uploadDeadlineMs: e.SLUICE_UPLOAD_DEADLINE_MS,
    },
    uploadBufferBytes: e.SLUICE_UPLOAD_BUFFER_BYTES,
    /** Uploads read at once; 0: no cap. */
    maxActiveUploads: e.SLUICE_MAX_ACTIVE_UPLOADS,
    /** Processing jobs (docs/jobs.md). */
    jobs: jobsConfig(e),
    /** Authentication, links, abuse limits, hardening (docs/security.md). */
    security: securityConfig(e),
    /** The S3-compatible endpoint; undefined (no /s3 routes) without access keys. */
    s3Api:
      e.SLUICE_S3API_ACCESS_KEYS !== undefined && e.SLUICE_S3API_SECRET !== undefined
        ? { accessKeys: e.SLUICE_S3API_ACCESS_KEYS as readonly S3AccessKeyEntry[], secret: e.SLUICE_S3API_SECRET, maxPresignS: e.SLUICE_S3API_MAX_PRESIGN_S }
        : undefined,
    /** Resumable uploads (tus): expiry of unfinished uploads and the sweep timer. */
    tus: {
      expiryMs: e.SLUICE_TUS_EXPIRY_MS,
      sweepIntervalMs: e.SLUICE_TUS_SWEEP_INTERVAL_MS,
      lock: e.SLUICE_TUS_LOCK ?? (kind === 's3' ? 'bucket' : 'process'),
      lockTimeoutMs: e.SLUICE_TUS_LOCK_TIMEOUT_MS,
      checksumSpoolBytes: e.SLUICE_TUS_CHECKSUM_SPOOL_BYTES,
    },
    /** Shutdown, metrics, reaper, shedding, cluster (docs/operations.md). */
    ops: {
      shutdown: { graceMs: e.SLUICE_SHUTDOWN_GRACE_MS, drainDelayMs: e.SLUICE_SHUTDOWN_DRAIN_DELAY_MS, abortMs: e.SLUICE_SHUTDOWN_ABORT_MS },
      metrics: e.SLUICE_METRICS,
      reaper: { intervalMs: e.SLUICE_REAPER_INTERVAL_MS, maxAgeMs: e.SLUICE_REAPER_MAX_AGE_MS },
      /** 0 disables each threshold. */
      shed: {
        eventLoopDelayMs: e.SLUICE_SHED_EVENT_LOOP_DELAY_MS,
        heapBytes: e.SLUICE_SHED_HEAP_BYTES,
        rssBytes: e.SLUICE_SHED_RSS_BYTES,
        uploadWaiters: e.SLUICE_SHED_UPLOAD_WAITERS,
      },
      workers: e.SLUICE_WORKERS,
      workerMaxRestarts: e.SLUICE_WORKER_MAX_RESTARTS,
      uvThreadpoolSize: e.UV_THREADPOOL_SIZE,
      docs: e.SLUICE_DOCS,
      listenBacklog: e.SLUICE_LISTEN_BACKLOG,
    },
    /** What this node runs: ingest, worker or both. */
    role: e.SLUICE_ROLE,
    redis: redisConfig(e),
  };
}

/** The environment → Config: field rules, then the rules between fields, then the shape the code uses. */
const configSchema = envSchema.superRefine(checkRelations).transform(toConfig);

export type Config = z.output<typeof configSchema>;
export type S3Config = Extract<Config['storage'], { kind: 's3' }>['s3'];
export type SecurityConfig = Config['security'];
export type JobsConfig = Config['jobs'];
export type OpsConfig = Config['ops'];
export type RedisConfig = NonNullable<Config['redis']>;
export type S3ApiConfig = NonNullable<Config['s3Api']>;

/** `NAME` or the contents of the file named by `NAME_FILE` (trailing newline dropped); not both. */
function withSecretFiles(env: Env, names: readonly string[]): Env {
  const out: Env = { ...env };
  for (const name of names) {
    const file = env[`${name}_FILE`];
    if (file === undefined) continue;
    if (env[name] !== undefined) throw new ConfigError(`invalid ${name}_FILE: set ${name} or ${name}_FILE, not both`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`invalid ${name}_FILE: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

const SECRET_VARS = ['SLUICE_AUTH_JWT_SECRET', 'SLUICE_AUTH_API_KEYS', 'SLUICE_LINK_SECRET', 'SLUICE_S3_SECRET_ACCESS_KEY', 'SLUICE_REDIS_PASSWORD', 'SLUICE_REDIS_URL', 'SLUICE_S3API_SECRET'] as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse the environment. Throws ConfigError with one line per bad variable. */
export function loadConfig(rawEnv: Env = process.env): Readonly<Config> {
  // Secrets may come from files (`<NAME>_FILE`), so they stay out of the process environment.
  const env = withSecretFiles(rawEnv, SECRET_VARS);
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const [name, ...inner] = i.path.map(String);
      const where = inner.length > 0 ? `${name}: ${inner.join('.')}` : String(name);
      if (i.code === 'custom' && (i.params as { relation?: boolean } | undefined)?.relation) return `invalid ${where}: ${i.message}`;
      // Never echo a secret back (logs, terminals).
      const got = (SECRET_VARS as readonly string[]).includes(String(name)) ? '[redacted]' : JSON.stringify(env[String(name)]);
      return `invalid ${where}: ${i.message} (got ${got})`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  return deepFreeze(parsed.data);
}

function deepFreeze<T>(o: T): Readonly<T> {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Every environment variable the service reads (README documents each one; a test checks). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);
