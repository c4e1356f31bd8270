// Image jobs never hold a large original whole in memory: sharp gathers a
// stream input into one Buffer before decoding, so the worker hands libvips a
// file instead, the object's own file on fs, a spool file streamed from S3 in
// small chunks, removed after the job. Proven structurally on a large TIFF
// made with sharp: on fs the storage's get() is never called; on S3 the body
// arrives in chunks far smaller than the image and nothing is left spooled.

import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadConfig } from '../src/config.ts';
import { buildTask } from '../src/jobs/tasks.ts';
import { jobCatalogue } from '../src/core/jobs.ts';
import { createStorage } from '../src/storage/index.ts';
import type { GetOptions, GetResult, Storage } from '../src/storage/storage.ts';
import { openImageInput } from '../workers/image-input.ts';
import { runImageTask } from '../workers/image.ts';
import type { ImageTask } from '../workers/tasks.ts';
import { backends, s3Env } from './helpers/server.ts';

const WIDTH = 4000;
const HEIGHT = 3000;
const MiB = 1024 * 1024;

/** Counts what flows through get(): calls and the largest chunk seen. */
function watched(inner: Storage): Storage & { gets: number; largestChunk: number } {
  const seen = { gets: 0, largestChunk: 0 };
  const get = async (key: string, opts?: GetOptions): Promise<GetResult> => {
    seen.gets++;
    const r = await inner.get(key, opts);
    const body = Readable.from(
      (async function* () {
        for await (const chunk of r.body as AsyncIterable<Uint8Array>) {
          seen.largestChunk = Math.max(seen.largestChunk, chunk.byteLength);
          yield chunk;
        }
      })(),
    );
    return { body, size: r.size };
  };
  // Methods are bound to the adapter itself (its private fields need the real receiver).
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'get') return get;
      if (prop === 'gets' || prop === 'largestChunk') return seen[prop];
      const v: unknown = Reflect.get(target, prop);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Storage & { gets: number; largestChunk: number };
}

describe('image jobs read large originals as files, never as one buffer', () => {
  let dir: string;
  let tiff: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-image-stream-'));
    tiff = path.join(dir, 'big.tif');
    // Uncompressed, so the file is as large as its pixels (36 MB).
    await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .tiff({ compression: 'none' })
      .toFile(tiff);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const backend of backends()) {
    it(`${backend}: the worker gets a file, the job's output is right, nothing is left spooled`, async () => {
      const env: Record<string, string> = { SLUICE_JOBS_POOL_SIZE: '0' };
      let bucketEnv: Awaited<ReturnType<typeof s3Env>> | undefined;
      if (backend === 's3') {
        bucketEnv = await s3Env('image-stream');
        Object.assign(env, bucketEnv.env);
      } else {
        Object.assign(env, { SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: path.join(dir, 'data') });
      }
      const config = loadConfig(env);
      const inner = await createStorage(config);
      const storage = watched(inner);
      const spoolDir = await mkdtemp(path.join(dir, `spool-${backend}-`));
      try {
        const size = (await stat(tiff)).size;
        assert.ok(size > 30 * MiB, `the TIFF is large (${size} bytes)`);
        const key = `${config.keyPrefix}/default/0190f0f0-0000-7000-8000-${backend === 's3' ? '000000000001' : '000000000002'}/original`;
        await inner.put(key, createReadStream(tiff), { contentType: 'image/tiff' });

        // The task crossing into the worker names the object; it carries no bytes.
        const spec = jobCatalogue(config).get('thumbnail')!;
        const manifest = { id: '0190f0f0-0000-7000-8000-000000000001', tenant: 'default', original: { key } } as Parameters<typeof buildTask>[1];
        const built = buildTask(spec, manifest, config).task as ImageTask;
        assert.deepEqual(built.input, { key });

        const input = await openImageInput(storage, key, { dir: spoolDir, signal: AbortSignal.timeout(60_000) });
        assert.equal(typeof input.file, 'string');
        assert.equal(input.size, size);
        assert.equal((await stat(input.file)).size, size);
        if (backend === 'fs') {
          assert.equal(input.spooled, false, 'fs hands over the object file itself');
          assert.equal(storage.gets, 0, 'no stream was opened on fs');
        } else {
          assert.equal(input.spooled, true);
          assert.equal(storage.gets, 1);
          assert.ok(storage.largestChunk > 0 && storage.largestChunk <= MiB, `S3 bytes arrived in small chunks (largest ${storage.largestChunk})`);
        }
        await input.release();
        assert.deepEqual(await readdir(spoolDir), []);

        const task: ImageTask = { ...built, outputKey: `${key.slice(0, -'original'.length)}variants/thumbnail`, spoolDir };
        const r = await runImageTask(task, storage);
        assert.ok(r.ok, JSON.stringify(r));
        assert.equal(r.output.inputSize, size);
        assert.equal(Math.max(r.output.width!, r.output.height!), spec.kind === 'image' ? spec.size : undefined);
        const out = await inner.head(task.outputKey!);
        assert.equal(out?.size, r.output.size);
        assert.deepEqual(await readdir(spoolDir), [], 'the spool file is gone after the job');
      } finally {
        await inner.close();
      }
    });
  }

  it('a pixel bomb read from a file is still refused from its header', async () => {
    const bombFile = path.join(dir, 'bomb.png');
    await sharp({ create: { width: 8000, height: 8000, channels: 3, background: '#000000' } }).png({ compressionLevel: 9 }).toFile(bombFile);
    assert.ok((await stat(bombFile)).size < 1 * MiB);
    const config = loadConfig({ SLUICE_STORAGE: 'fs', SLUICE_DATA_DIR: path.join(dir, 'bomb-data'), SLUICE_JOBS_POOL_SIZE: '0' });
    const storage = await createStorage(config);
    const key = `${config.keyPrefix}/default/0190f0f0-0000-7000-8000-000000000003/original`;
    await storage.put(key, createReadStream(bombFile), { contentType: 'image/png' });
    const spec = jobCatalogue(config).get('thumbnail')!;
    const task = buildTask(spec, { id: '0190f0f0-0000-7000-8000-000000000003', tenant: 'default', original: { key } } as Parameters<typeof buildTask>[1], config).task as ImageTask;
    const r = await runImageTask(task, storage);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'IMAGE_TOO_LARGE');
    assert.equal(await storage.head(task.outputKey!), null, 'no output written');
  });
});
