// Revocations over Redis pub/sub: the revoking instance publishes
// { kind, value, notBefore } on one channel; every instance (subscribed on its
// own connection) drops that entry from its cache, so the next request reads
// the revocation from storage. Pub/sub is fire-and-forget: a message sent while
// an instance is disconnected is lost to it, so on every reconnect the whole
// cache is dropped. Storage stays the record; the bus only shortens the wait.

import { z } from 'zod';
import type { CoreLog } from '../core/ingest.ts';
import type { RevocationBus } from '../core/auth/revocation-bus.ts';
import type { Revocation } from '../core/auth/revocations.ts';
import type { RedisLink } from './link.ts';

const messageSchema = z.object({ kind: z.enum(['subject', 'tenant']), value: z.string().max(1024), notBefore: z.number() });

export class RedisRevocationBus implements RevocationBus {
  readonly #link: RedisLink;
  readonly #channel: string;
  readonly #log: CoreLog;

  constructor(link: RedisLink, log: CoreLog) {
    this.#link = link;
    this.#channel = link.key('revocations');
    this.#log = log;
  }

  async publish(revocations: readonly Revocation[]): Promise<void> {
    for (const r of revocations) await this.#link.commands.publish(this.#channel, JSON.stringify(r));
  }

  async subscribe(onRevoked: (r: Revocation) => void, onGap: () => void): Promise<void> {
    const sub = this.#link.subscriber;
    let connectedOnce = false;
    sub.on('ready', () => {
      // ioredis resubscribes by itself; what was published meanwhile is gone.
      if (connectedOnce) onGap();
      connectedOnce = true;
    });
    sub.on('message', (channel: string, raw: string) => {
      if (channel !== this.#channel) return;
      let parsed: Revocation;
      try {
        parsed = messageSchema.parse(JSON.parse(raw));
      } catch {
        this.#log.warn({ channel }, 'malformed revocation message; dropping the whole cache');
        onGap();
        return;
      }
      this.#log.info({ revocation: { kind: parsed.kind, notBefore: parsed.notBefore } }, 'revocation received');
      onRevoked(parsed);
    });
    if (sub.status === 'ready') connectedOnce = true;
    // Rejects while Redis is down; ioredis subscribes once it connects, so do not fail start-up.
    await sub.subscribe(this.#channel).catch((err: unknown) => this.#log.warn({ err }, 'revocation channel: subscribe deferred until Redis is reachable'));
  }
}
