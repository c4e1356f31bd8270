// The storage contract: every backend runs this same suite, so fs and S3 stay
// interchangeable. A behaviour the app relies on belongs here.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { SluiceError } from '../../src/errors.ts';
import { canWriteConditionally, type Storage } from '../../src/storage/storage.ts';

export interface ContractTarget {
  name: string;
  make(): Promise<{ storage: Storage; pendingUploads?: () => Promise<number>; cleanup(): Promise<void> }>;
}

async function* chunks(buf: Buffer, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(storage: Storage, key: string, range?: { start: number; end: number }): Promise<Buffer> {
  const { body } = await storage.get(key, range ? { range } : {});
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function storageContract(target: ContractTarget): void {
  test(`${target.name}: storage contract`, async (t) => {
    const { storage, pendingUploads, cleanup } = await target.make();
    t.after(cleanup);
    const p = `contract-${randomBytes(4).toString('hex')}`;

    await t.test('put then get returns identical bytes, head reports size', async () => {
      for (const size of [0, 1, 70_000, 5 * 1024 * 1024, 6 * 1024 * 1024 + 3, 10 * 1024 * 1024]) {
        const data = randomBytes(size);
        const key = `${p}/rt/${size}`;
        const res = await storage.put(key, chunks(data), { contentType: 'application/octet-stream' });
        assert.equal(res.size, size);
        assert.equal(sha(await readAll(storage, key)), sha(data), `size ${size}`);
        assert.equal((await storage.head(key))?.size, size);
      }
    });

    await t.test('get with a range returns exactly that slice; bad ranges are RANGE_NOT_SATISFIABLE', async () => {
      const data = randomBytes(1000);
      await storage.put(`${p}/range`, chunks(data), { contentType: 'application/octet-stream' });
      assert.deepEqual(await readAll(storage, `${p}/range`, { start: 10, end: 19 }), data.subarray(10, 20));
      assert.deepEqual(await readAll(storage, `${p}/range`, { start: 990, end: 5000 }), data.subarray(990));
      const { size } = await storage.get(`${p}/range`, { range: { start: 0, end: 0 } }).then((r) => (r.body.destroy(), r));
      assert.equal(size, 1000, 'size is the whole object, not the range');
      await assert.rejects(storage.get(`${p}/range`, { range: { start: 1000, end: 1001 } }), (e: SluiceError) => e.code === 'RANGE_NOT_SATISFIABLE');
    });

    await t.test('missing keys: get rejects FILE_NOT_FOUND, head is null, delete succeeds', async () => {
      await assert.rejects(storage.get(`${p}/nope`), (e: SluiceError) => e.code === 'FILE_NOT_FOUND');
      assert.equal(await storage.head(`${p}/nope`), null);
      await storage.delete(`${p}/nope`);
    });

    await t.test('a body that throws leaves nothing behind (no object, no pending upload)', async () => {
      const boom = new Error('boom');
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(6 * 1024 * 1024); // past one part, so S3 starts a multipart upload
        yield randomBytes(1024);
        throw boom;
      }
      await assert.rejects(storage.put(`${p}/fail`, failing(), { contentType: 'application/octet-stream' }), (e) => e === boom);
      assert.equal(await storage.head(`${p}/fail`), null);
      if (pendingUploads) assert.equal(await pendingUploads(), 0, 'no pending multipart upload');
      const listed = await storage.list({ prefix: `${p}/` });
      assert.ok(!listed.objects.some((o) => o.key.startsWith(`${p}/fail`)), 'no temp or partial object listed');
    });

    await t.test('an aborted signal rejects the put and leaves nothing behind', async () => {
      const ac = new AbortController();
      async function* slow(): AsyncGenerator<Uint8Array> {
        yield randomBytes(6 * 1024 * 1024);
        ac.abort(new Error('client went away'));
        await new Promise((r) => setTimeout(r, 50));
        yield randomBytes(1024);
      }
      await assert.rejects(storage.put(`${p}/aborted`, slow(), { contentType: 'application/octet-stream', signal: ac.signal }));
      assert.equal(await storage.head(`${p}/aborted`), null);
      if (pendingUploads) assert.equal(await pendingUploads(), 0, 'no pending multipart upload');
    });

    await t.test('put replaces an existing key atomically', async () => {
      await storage.put(`${p}/replace`, chunks(Buffer.from('one')), { contentType: 'text/plain' });
      await storage.put(`${p}/replace`, chunks(Buffer.from('two!')), { contentType: 'text/plain' });
      assert.equal((await readAll(storage, `${p}/replace`)).toString(), 'two!');
    });

    await t.test('list: prefix, delimiter folding, startAfter and limit behave like S3', async () => {
      const base = `${p}/ls/`;
      for (const k of ['a/1', 'a/2', 'b/1', 'c', 'd/x/y']) await storage.put(base + k, chunks(Buffer.from(k)), { contentType: 'text/plain' });
      const all = await storage.list({ prefix: base });
      assert.deepEqual(all.objects.map((o) => o.key.slice(base.length)), ['a/1', 'a/2', 'b/1', 'c', 'd/x/y']);
      assert.equal(all.truncated, false);
      const folded = await storage.list({ prefix: base, delimiter: '/' });
      assert.deepEqual(folded.prefixes.map((k) => k.slice(base.length)), ['a/', 'b/', 'd/']);
      assert.deepEqual(folded.objects.map((o) => o.key.slice(base.length)), ['c']);
      const page = await storage.list({ prefix: base, delimiter: '/', limit: 2 });
      assert.equal(page.truncated, true);
      assert.equal(page.prefixes.length + page.objects.length, 2);
      const after = await storage.list({ prefix: base, delimiter: '/', startAfter: `${base}a0` });
      assert.deepEqual([...after.prefixes, ...after.objects.map((o) => o.key)].map((k) => k.slice(base.length)).sort(), ['b/', 'c', 'd/']);
      const sub = await storage.list({ prefix: `${base}a/` });
      assert.deepEqual(sub.objects.map((o) => o.key.slice(base.length)), ['a/1', 'a/2']);
      assert.deepEqual((await storage.list({ prefix: `${base}zzz/` })).objects, []);
    });

    await t.test('delete removes the object', async () => {
      await storage.put(`${p}/del`, chunks(Buffer.from('x')), { contentType: 'text/plain' });
      await storage.delete(`${p}/del`);
      assert.equal(await storage.head(`${p}/del`), null);
    });

    await t.test('ready resolves while the backend answers', async () => {
      await storage.ready();
    });

    await t.test('conditional writes: ifAbsent creates once; a second create is WRITE_CONFLICT and changes nothing', async () => {
      assert.ok(canWriteConditionally(storage), 'every backend has conditional writes (manifests need them)');
      const key = `${p}/cond/absent`;
      const made = await storage.putIf(key, chunks(Buffer.from('first')), { contentType: 'text/plain', condition: { ifAbsent: true } });
      assert.equal(made.size, 5);
      assert.equal((await storage.head(key))?.etag, made.etag, 'head reports the etag putIf returned');
      const got = await storage.get(key);
      got.body.destroy();
      assert.equal(got.etag, made.etag, 'get reports the etag of the bytes it returns');
      await assert.rejects(storage.putIf(key, chunks(Buffer.from('second')), { contentType: 'text/plain', condition: { ifAbsent: true } }), (e: SluiceError) => e.code === 'WRITE_CONFLICT');
      assert.equal((await readAll(storage, key)).toString(), 'first');
      assert.equal((await storage.head(key))?.etag, made.etag);
    });

    await t.test('conditional writes: ifMatch replaces only the version it names', async () => {
      assert.ok(canWriteConditionally(storage));
      const key = `${p}/cond/match`;
      const v1 = await storage.putIf(key, chunks(Buffer.from('v1')), { contentType: 'text/plain', condition: { ifAbsent: true } });
      const v2 = await storage.putIf(key, chunks(Buffer.from('v2')), { contentType: 'text/plain', condition: { ifMatch: v1.etag } });
      assert.notEqual(v2.etag, v1.etag, 'a new version has a new etag');
      await assert.rejects(storage.putIf(key, chunks(Buffer.from('stale')), { contentType: 'text/plain', condition: { ifMatch: v1.etag } }), (e: SluiceError) => e.code === 'WRITE_CONFLICT');
      assert.equal((await readAll(storage, key)).toString(), 'v2');
      // An unconditional put is a new version too: a writer holding v2's etag must lose.
      await storage.put(key, chunks(Buffer.from('v3')), { contentType: 'text/plain' });
      assert.notEqual((await storage.head(key))?.etag, v2.etag);
      await assert.rejects(storage.putIf(key, chunks(Buffer.from('stale')), { contentType: 'text/plain', condition: { ifMatch: v2.etag } }), (e: SluiceError) => e.code === 'WRITE_CONFLICT');
      assert.equal((await readAll(storage, key)).toString(), 'v3');
    });

    await t.test('conditional writes: a deleted object is never written back by ifMatch', async () => {
      assert.ok(canWriteConditionally(storage));
      const key = `${p}/cond/deleted`;
      const v1 = await storage.putIf(key, chunks(Buffer.from('alive')), { contentType: 'text/plain', condition: { ifAbsent: true } });
      await storage.delete(key);
      await assert.rejects(storage.putIf(key, chunks(Buffer.from('zombie')), { contentType: 'text/plain', condition: { ifMatch: v1.etag } }), (e: SluiceError) => e.code === 'WRITE_CONFLICT');
      assert.equal(await storage.head(key), null);
    });

    await t.test('conditional writes: of racing writers with one etag (or none), exactly one wins', async () => {
      assert.ok(canWriteConditionally(storage));
      const key = `${p}/cond/race`;
      const settle = (ps: Promise<unknown>[]) => Promise.allSettled(ps);
      const creates = await settle(Array.from({ length: 8 }, (_, i) => storage.putIf(key, chunks(Buffer.from(`c${i}`)), { contentType: 'text/plain', condition: { ifAbsent: true } })));
      assert.equal(creates.filter((r) => r.status === 'fulfilled').length, 1, 'one create');
      for (const r of creates) if (r.status === 'rejected') assert.equal((r.reason as SluiceError).code, 'WRITE_CONFLICT');
      const base = (await storage.head(key))!.etag!;
      const swaps = await settle(Array.from({ length: 8 }, (_, i) => storage.putIf(key, chunks(Buffer.from(`s${i}`)), { contentType: 'text/plain', condition: { ifMatch: base } })));
      const won = swaps.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.equal(won.length, 1, 'one swap');
      assert.equal((await readAll(storage, key)).toString(), `s${won[0]}`);
    });

    await t.test('conditional writes: a refused multipart-sized body and a failing body leave nothing behind', async () => {
      assert.ok(canWriteConditionally(storage));
      const key = `${p}/cond/big`;
      await storage.putIf(key, chunks(Buffer.from('small')), { contentType: 'text/plain', condition: { ifAbsent: true } });
      await assert.rejects(storage.putIf(key, chunks(randomBytes(6 * 1024 * 1024 + 7)), { contentType: 'application/octet-stream', condition: { ifAbsent: true } }), (e: SluiceError) => e.code === 'WRITE_CONFLICT');
      assert.equal((await readAll(storage, key)).toString(), 'small');
      const big = randomBytes(6 * 1024 * 1024 + 7);
      const etag = (await storage.head(key))!.etag!;
      const replaced = await storage.putIf(key, chunks(big), { contentType: 'application/octet-stream', condition: { ifMatch: etag } });
      assert.equal(replaced.size, big.length);
      assert.equal(sha(await readAll(storage, key)), sha(big));
      const boom = new Error('boom');
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(6 * 1024 * 1024);
        throw boom;
      }
      await assert.rejects(storage.putIf(`${p}/cond/failing`, failing(), { contentType: 'application/octet-stream', condition: { ifAbsent: true } }), (e) => e === boom);
      assert.equal(await storage.head(`${p}/cond/failing`), null);
      if (pendingUploads) assert.equal(await pendingUploads(), 0, 'no pending multipart upload');
      const listed = await storage.list({ prefix: `${p}/cond/` });
      assert.deepEqual(listed.objects.map((o) => o.key.slice(p.length)).sort(), ['/cond/absent', '/cond/big', '/cond/match', '/cond/race'], 'no temp or partial object listed');
    });
  });
}
