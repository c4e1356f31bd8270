// Completion webhook: POST a file's manifest, signed, with undici. The receiver
// verifies X-Sluice-Signature = "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// `${t}.${body}` under the shared secret>" and deduplicates on Idempotency-Key
// (the file id): delivery is at least once.

import { createHmac } from 'node:crypto';
import { request } from 'undici';
import type { JobsConfig } from '../config.ts';
import type { Manifest } from '../core/manifest.ts';

export type WebhookConfig = NonNullable<JobsConfig['webhook']>;

export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/** The body sent: the manifest without its own delivery record, so every attempt sends the same bytes. */
export function webhookBody(m: Manifest): string {
  const { webhook: _delivery, ...rest } = m;
  return JSON.stringify({ event: 'file.processed', file: rest });
}

/** One attempt. Resolves on a 2xx answer; rejects with a short reason otherwise. */
export async function deliverWebhook(cfg: WebhookConfig, m: Manifest, signal: AbortSignal): Promise<void> {
  const body = webhookBody(m);
  const t = Math.floor(Date.now() / 1000);
  const res = await request(cfg.url, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'sluice-webhook/1',
      'idempotency-key': m.id,
      'x-sluice-event': 'file.processed',
      'x-sluice-signature': signWebhook(cfg.secret, t, body),
    },
    signal: AbortSignal.any([signal, AbortSignal.timeout(cfg.timeoutMs)]),
    headersTimeout: cfg.timeoutMs,
    bodyTimeout: cfg.timeoutMs,
  });
  await res.body.dump({ limit: 64 * 1024 });
  if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`receiver answered ${res.statusCode}`);
}

/** Delay before retry `attempt` (1-based): backoff × 2^(attempt-1), capped at 5 minutes. */
export function webhookBackoff(cfg: WebhookConfig, attempt: number): number {
  return Math.min(cfg.backoffMs * 2 ** (attempt - 1), 5 * 60_000);
}
