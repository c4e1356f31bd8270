// The upload-slots contract: the in-process cap and the Redis leases answer
// the same way, so SLUICE_REDIS_URL changes where slots are counted, not what
// a tenant sees.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UploadSlots } from '../../src/core/limits/upload-slots.ts';

export interface SlotsTarget {
  name: string;
  /** Two views of one cap (two instances sharing it, or the same object twice for the embedded one). */
  make(max: number): Promise<{ a: UploadSlots; b: UploadSlots; cleanup(): Promise<void> }>;
}

const code = (err: unknown) => (err as { code?: string }).code;

export function uploadSlotsContract(target: SlotsTarget): void {
  test(`${target.name}: upload slots contract`, async (t) => {
    const { a, b, cleanup } = await target.make(2);
    t.after(cleanup);

    await t.test('the cap holds; the refusal is TOO_MANY_UPLOADS with Retry-After', async () => {
      const r1 = await a.acquire('acme');
      const r2 = await b.acquire('acme');
      await assert.rejects(a.acquire('acme'), (err: unknown) => code(err) === 'TOO_MANY_UPLOADS' && (err as { headers: Record<string, string> }).headers['retry-after'] === '1');
      await assert.rejects(b.acquire('acme'), (err: unknown) => code(err) === 'TOO_MANY_UPLOADS');
      assert.equal(await a.inUse('acme'), 2);
      r1();
      r2();
    });

    await t.test('a release frees a slot, once: releasing twice does not free a second one', async () => {
      const r1 = await a.acquire('twice');
      const r2 = await a.acquire('twice');
      r1();
      r1();
      const r3 = await b.acquire('twice');
      await assert.rejects(b.acquire('twice'), (err: unknown) => code(err) === 'TOO_MANY_UPLOADS');
      r2();
      r3();
      await waitFor(async () => (await a.inUse('twice')) === 0);
    });

    await t.test('tenants do not share slots', async () => {
      const held = [await a.acquire('one'), await a.acquire('one')];
      const other = await b.acquire('two');
      assert.equal(await b.inUse('two'), 1);
      for (const r of [...held, other]) r();
    });
  });
}

/** Releases may be asynchronous (a Redis ZREM): wait until the count shows it, by re-reading, bounded by the test timeout. */
async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((resolve) => setImmediate(resolve));
}
