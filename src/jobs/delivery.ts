// Delivering a file's completion webhook: attempts persisted in the manifest
// before each POST (a crash mid-delivery still counts it), exponential
// backoff between them, and a final delivered/failed state. One attempt's
// signing and sending are in webhook.ts.

import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreLog } from '../core/ingest.ts';
import type { Manifest } from '../core/manifest.ts';
import { LeftPending, type StopSignals } from './control.ts';
import type { SaveManifest } from './manifest-save.ts';
import { deliverWebhook, webhookBackoff, type WebhookConfig } from './webhook.ts';

export class WebhookDelivery {
  readonly #cfg: WebhookConfig | undefined;
  readonly #maxWaiting: number;
  readonly #signals: StopSignals;
  #delivering = 0;

  /** `maxWaiting` bounds deliveries in progress (with their backoff sleeps) like the queue bounds files. */
  constructor(cfg: WebhookConfig | undefined, maxWaiting: number, signals: StopSignals) {
    this.#cfg = cfg;
    this.#maxWaiting = maxWaiting;
    this.#signals = signals;
  }

  /** Deliveries in progress now. */
  get delivering(): number {
    return this.#delivering;
  }

  /** Deliver `m`'s webhook unless there is none or it already ended; throws LeftPending when it must wait for a rescan. */
  async deliver(m: Manifest, save: SaveManifest, log: CoreLog): Promise<void> {
    const cfg = this.#cfg;
    if (!cfg || m.webhook?.state === 'delivered' || m.webhook?.state === 'failed') return;
    // Bounded like the queue: past it, the marker keeps the delivery for a later rescan.
    if (this.#delivering >= this.#maxWaiting) throw new LeftPending('too many deliveries waiting');
    this.#delivering++;
    try {
      for (let attempt = (m.webhook?.attempts ?? 0) + 1; ; attempt++) {
        m.webhook = { state: 'pending', attempts: attempt, ...(m.webhook?.lastError ? { lastError: m.webhook.lastError } : {}) };
        await save();
        try {
          await deliverWebhook(cfg, m, this.#signals.stop);
          m.webhook = { state: 'delivered', attempts: attempt, deliveredAt: new Date().toISOString() };
          log.info({ webhook: { attempts: attempt } }, 'webhook delivered');
          await save();
          return;
        } catch (err) {
          if (this.#signals.closing.aborted) throw new LeftPending('closing');
          const lastError = err instanceof Error ? err.message : String(err);
          if (attempt >= cfg.maxAttempts) {
            m.webhook = { state: 'failed', attempts: attempt, lastError };
            log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook failed; giving up');
            await save();
            return;
          }
          m.webhook = { state: 'pending', attempts: attempt, lastError };
          log.warn({ webhook: { attempts: attempt, lastError } }, 'webhook attempt failed; retrying');
          await sleep(webhookBackoff(cfg, attempt), undefined, { signal: this.#signals.stop }).catch(() => {
            throw new LeftPending('closing');
          });
        }
      }
    } finally {
      this.#delivering--;
    }
  }
}
