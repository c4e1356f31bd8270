// Waiting on a condition instead of a fixed sleep: a test goes on as soon as
// the state it needs is there, and a loaded machine only makes it slower,
// never wrong. The deadline is only there to turn a hang into a message.

import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` until it returns a truthy value, which is returned; throws `what` after `deadlineMs`. */
export async function until<T>(check: () => T | Promise<T>, what: string, deadlineMs = 60_000): Promise<NonNullable<T>> {
  const giveUp = performance.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (performance.now() > giveUp) throw new Error(`gave up after ${deadlineMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
