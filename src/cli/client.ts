// The CLI's HTTP side: one undici Pool per server (keep-alive connections,
// as many as the concurrency), the bearer token on every request, error
// bodies turned into coded CliErrors, and the retry policy: network errors,
// 408, 429, 502, 503 and 504 are retried with exponential backoff and full
// jitter, honouring Retry-After.

import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';

export class CliError extends Error {
  readonly code: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** From Retry-After, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  /** Known to have left nothing committed on the server (it answered with a coded error). */
  readonly settled: boolean;
  readonly #opts: CliErrorOptions;

  constructor(code: string, message: string, opts: CliErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CliError';
    this.code = code;
    this.status = opts.status;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
    this.settled = opts.settled ?? false;
    this.#opts = opts;
  }

  with(changes: CliErrorOptions): CliError {
    return new CliError(this.code, this.message, { ...this.#opts, ...changes });
  }
}

export interface CliErrorOptions {
  status?: number;
  retryable?: boolean;
  retryAfterMs?: number;
  settled?: boolean;
  cause?: unknown;
}

export interface ClientOptions {
  server: string;
  token: string | undefined;
  connections: number;
}

const RETRY_STATUSES = new Set([408, 429, 502, 503, 504]);
/** Error codes of network failures worth retrying (undici and Node). */
const RETRY_NET = /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_SOCKET|UND_ERR_CLOSED|UND_ERR_CONNECT_TIMEOUT|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/;
/** Longest wait a Retry-After may impose. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

export class ApiClient {
  readonly server: string;
  readonly #pool: Pool;
  readonly #auth: Record<string, string>;
  /** Server clock minus ours, from the last response's Date header (±1 s); undefined until one arrived. */
  clockOffsetMs: number | undefined;

  constructor(opts: ClientOptions) {
    const url = new URL(opts.server);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError('INVALID_SERVER', `--server must be an http(s) URL, got ${url.protocol}`);
    this.server = url.origin;
    // Uploads can take long; the server guards stalls itself, so only headers are timed.
    this.#pool = new Pool(url.origin, { connections: opts.connections, headersTimeout: 10 * 60_000, bodyTimeout: 5 * 60_000 });
    this.#auth = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  }

  /** One request; the caller consumes or dumps the body. Network errors become retryable CliErrors. */
  async request(opts: {
    method: Dispatcher.HttpMethod;
    path: string;
    headers?: Record<string, string>;
    body?: Dispatcher.DispatchOptions['body'];
    signal?: AbortSignal | undefined;
  }): Promise<Dispatcher.ResponseData> {
    try {
      const res = await this.#pool.request({
        method: opts.method,
        path: opts.path,
        headers: { ...opts.headers, ...this.#auth },
        body: opts.body ?? null,
        signal: opts.signal ?? null,
      });
      const date = Date.parse(String(res.headers.date ?? ''));
      if (Number.isFinite(date)) this.clockOffsetMs = date - Date.now();
      return res;
    } catch (err) {
      throw netError(err, opts.signal);
    }
  }

  /** Request and parse a JSON answer; non-2xx answers throw the server's coded error. */
  async json<T>(opts: Parameters<ApiClient['request']>[0]): Promise<T> {
    const res = await this.request(opts);
    if (res.statusCode >= 200 && res.statusCode < 300) {
      try {
        return (await res.body.json()) as T;
      } catch (err) {
        throw netError(err, opts.signal);
      }
    }
    throw await errorFrom(res);
  }

  /**
   * Fails fast, before any work, when the service cannot be reached (after
   * the usual retries): otherwise every file of a batch would spend its own
   * retries on a server that is down.
   */
  async preflight(policy: RetryPolicy, signal: AbortSignal): Promise<void> {
    try {
      await withRetries(policy, signal, async () => {
        const res = await this.request({ method: 'GET', path: '/health', signal });
        await res.body.dump();
        if (res.statusCode >= 500) throw new CliError(`HTTP_${res.statusCode}`, `GET /health answered ${res.statusCode}`, { retryable: true });
      });
    } catch (err) {
      const e = netError(err, signal);
      if (e instanceof CliError && e.code === 'INTERRUPTED') throw e;
      throw new CliError('SERVER_UNREACHABLE', `cannot reach ${this.server}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }
}

/** The coded error of a non-2xx answer; its body is consumed. */
export async function errorFrom(res: Dispatcher.ResponseData): Promise<CliError> {
  let code = `HTTP_${res.statusCode}`;
  let message = `server answered ${res.statusCode}`;
  let coded = false;
  try {
    const text = await res.body.text();
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
    if (typeof body.error?.code === 'string') {
      code = body.error.code;
      coded = true;
    }
    if (typeof body.error?.message === 'string') message = body.error.message;
    if (typeof body.error?.requestId === 'string') message += ` (request ${body.error.requestId})`;
  } catch {
    // Not our JSON (a proxy's page): keep the status.
  }
  const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
  return new CliError(code, message, {
    status: res.statusCode,
    retryable: RETRY_STATUSES.has(res.statusCode),
    // Only sluice itself answers with a coded error; a proxy's 502/504 may hide a commit.
    settled: coded,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

export function netError(err: unknown, signal?: AbortSignal | undefined): unknown {
  if (err instanceof CliError) return err;
  if (signal?.aborted) return new CliError('INTERRUPTED', 'interrupted', { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRY_NET.test(code)) {
    return new CliError('NETWORK_ERROR', `${code}: ${(err as Error).message}`, { retryable: true, cause: err });
  }
  return err;
}

/** Retry-After as delta-seconds or an HTTP date, in ms, capped. */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s.trim() === '') return undefined;
  const ms = /^\s*\d+\s*$/.test(s) ? Number(s) * 1000 : Date.parse(s) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

export interface RetryPolicy {
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or
 * `retries` retries are spent. Waits honour Retry-After, else back off
 * exponentially with full jitter. `onRetry` sees each retried error.
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  signal: AbortSignal,
  attempt: (n: number) => Promise<T>,
  onRetry?: (err: CliError, n: number, waitMs: number) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const e = netError(err, signal);
      if (!(e instanceof CliError) || !e.retryable || n > policy.retries || signal.aborted) throw e;
      const backoff = Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
      const waitMs = e.retryAfterMs ?? backoff;
      onRetry?.(e, n, waitMs);
      try {
        await sleep(waitMs, undefined, { signal });
      } catch {
        throw new CliError('INTERRUPTED', 'interrupted');
      }
    }
  }
}
