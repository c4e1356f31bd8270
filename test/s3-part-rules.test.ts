// S3 providers' part rules: a file up to SLUICE_MAX_FILE_BYTES always fits the
// store's part count. The planner is checked at S3's real scale (10,000 parts,
// a body of 10,001 base parts); MinIO, which refuses parts under 5 MiB but the
// last, is then given a 4-part limit through SLUICE_S3_MAX_PARTS, so a body of
// five 5 MiB parts and a byte is the same case, kept small.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig, ConfigError } from '../src/config.ts';
import { planParts, type PartPlan } from '../src/storage/s3-parts.ts';
import { S3_PROVIDER_PROFILES } from '../src/storage/s3-providers.ts';
import { call, multipartBody, pngOfSize, sha256, type UploadedFile } from './helpers/http.ts';
import { listPendingMultipartUploads, s3ClientConfig, s3TestServer } from './helpers/s3.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The part sizes a body of `total` bytes is cut into under `plan`. */
function cut(plan: PartPlan, total: number): number[] {
  const parts: number[] = [];
  for (let sent = 0, n = 1; sent < total; n++) {
    const size = Math.min(plan.sizeOf(n), total - sent);
    parts.push(size);
    sent += size;
  }
  return parts;
}

describe('part planner at S3 scale', () => {
  const s3 = { maxParts: 10_000, maxPartSize: 5 * GiB, equalParts: false };

  it('a stream of 10,001 base parts fits 10,000 parts', () => {
    const total = 10_001 * 5 * MiB;
    const plan = planParts({ partSize: 5 * MiB, rules: s3, maxFileBytes: total });
    const parts = cut(plan, total);
    assert.ok(parts.length <= 10_000, `${parts.length} parts`);
    assert.equal(parts.reduce((a, b) => a + b, 0), total);
    // The first half keep the configured size; only later parts grow.
    assert.equal(parts[0], 5 * MiB);
    assert.equal(parts[4_999], 5 * MiB);
    assert.ok(plan.largest <= (2 * total) / 10_000 + MiB, `largest part ${plan.largest}`);
  });

  it('the largest allowed stream fits, whatever its length up to the limit', () => {
    const maxFileBytes = 200 * GiB;
    const plan = planParts({ partSize: 8 * MiB, rules: s3, maxFileBytes });
    for (const total of [1, 8 * MiB, 40 * GiB, 40 * GiB + 1, 150 * GiB, maxFileBytes]) {
      assert.ok(cut(plan, total).length <= 10_000, `${total} bytes`);
    }
  });

  it('a declared length gets equal parts sized to fit', () => {
    const total = 10_001 * 5 * MiB;
    const plan = planParts({ partSize: 5 * MiB, rules: s3, maxFileBytes: 100 * GiB, declaredSize: total });
    const parts = cut(plan, total);
    assert.ok(parts.length <= 10_000);
    assert.equal(new Set(parts.slice(0, -1)).size, 1);
  });

  it('equal-parts stores (R2) get one fixed size for a stream', () => {
    const rules = { ...s3, equalParts: true };
    const plan = planParts({ partSize: 5 * MiB, rules, maxFileBytes: 10_001 * 5 * MiB });
    const parts = cut(plan, 10_001 * 5 * MiB);
    assert.ok(parts.length <= 10_000);
    assert.equal(new Set(parts.slice(0, -1)).size, 1);
  });

  it('Scaleway: a 5 GiB file fits 1,000 parts with 5 MiB parts configured', () => {
    const rules = { maxParts: S3_PROVIDER_PROFILES.scaleway.maxParts, maxPartSize: 5 * GiB, equalParts: false };
    const plan = planParts({ partSize: 5 * MiB, rules, maxFileBytes: 5 * GiB });
    assert.ok(cut(plan, 5 * GiB).length <= 1_000);
  });

  it('the configured part size is kept when it already fits', () => {
    const plan = planParts({ partSize: 8 * MiB, rules: s3, maxFileBytes: 5 * GiB });
    assert.equal(plan.largest, 8 * MiB);
    assert.equal(plan.sizeOf(9_999), 8 * MiB);
  });
});

describe('provider profiles', () => {
  const base = { SLUICE_S3_BUCKET: 'media', SLUICE_S3_ENDPOINT: 'http://127.0.0.1:9000' };
  const s3Of = (env: Record<string, string>) => {
    const c = loadConfig({ ...base, ...env });
    assert.equal(c.storage.kind, 's3');
    if (c.storage.kind !== 's3') throw new Error('unreachable');
    return c.storage.s3;
  };

  it('set checksum mode, part limit, equal parts and path style', () => {
    assert.deepEqual(
      { ...s3Of({}) },
      { ...s3Of({}), provider: 'generic', checksum: 'when_supported', maxParts: 10_000, equalParts: false, forcePathStyle: false },
    );
    const scw = s3Of({ SLUICE_S3_PROVIDER: 'scaleway' });
    assert.equal(scw.maxParts, 1_000);
    assert.equal(scw.checksum, 'when_required');
    const r2 = s3Of({ SLUICE_S3_PROVIDER: 'r2' });
    assert.equal(r2.equalParts, true);
    assert.equal(r2.checksum, 'when_required');
    assert.equal(s3Of({ SLUICE_S3_PROVIDER: 'minio' }).forcePathStyle, true);
    assert.equal(s3Of({ SLUICE_S3_PROVIDER: 'b2' }).checksum, 'when_required');
    assert.equal(s3Of({ SLUICE_S3_PROVIDER: 'gcs' }).checksum, 'when_required');
  });

  it('explicit settings win over the profile', () => {
    const c = s3Of({ SLUICE_S3_PROVIDER: 'r2', SLUICE_S3_CHECKSUM: 'when_supported', SLUICE_S3_MAX_PARTS: '500', SLUICE_S3_FORCE_PATH_STYLE: 'true' });
    assert.equal(c.checksum, 'when_supported');
    assert.equal(c.maxParts, 500);
    assert.equal(c.forcePathStyle, true);
  });

  it('a size limit no part plan can hold stops start-up, naming the variable', () => {
    assert.throws(
      () => loadConfig({ ...base, SLUICE_S3_MAX_PARTS: '2', SLUICE_MAX_FILE_BYTES: String(11 * GiB) }),
      (err: unknown) => err instanceof ConfigError && /^invalid SLUICE_MAX_FILE_BYTES/.test(err.message),
    );
    assert.throws(() => loadConfig({ ...base, SLUICE_S3_PROVIDER: 'dropbox' }), ConfigError);
  });
});

const server = s3TestServer();
describe('part rules on MinIO: a body of five 5 MiB parts and a byte under a 4-part limit', { skip: server ? false : 'no S3 server' }, () => {
  const total = 5 * 5 * MiB + 1;
  let data: Buffer;
  let client: S3Client;
  before(async () => {
    data = await pngOfSize(total);
    client = new S3Client(s3ClientConfig(server!));
  });
  after(() => client.destroy());

  /** Part count and sizes of a stored object (HEAD with partNumber). */
  async function partsOf(srv: TestServer, id: string): Promise<number[]> {
    const manifest = (await call(`${srv.url}/v1/files/${id}`)).json<{ original: { key: string } }>();
    const first = await client.send(new HeadObjectCommand({ Bucket: srv.bucket, Key: manifest.original.key, PartNumber: 1 }));
    const count = first.PartsCount ?? 1;
    const sizes = [Number(first.ContentLength)];
    for (let n = 2; n <= count; n++) {
      const h = await client.send(new HeadObjectCommand({ Bucket: srv.bucket, Key: manifest.original.key, PartNumber: n }));
      sizes.push(Number(h.ContentLength));
    }
    return sizes;
  }

  async function roundTrip(srv: TestServer, how: 'stream' | 'declared'): Promise<number[]> {
    let res;
    if (how === 'declared') {
      res = await call(`${srv.url}/v1/files/big.png`, { method: 'PUT', body: data, headers: { 'content-type': 'image/png' } });
    } else {
      // A multipart form: the file's length is not known before its bytes.
      const form = multipartBody([{ name: 'file', filename: 'big.png', contentType: 'image/png', data }]);
      res = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
    }
    assert.equal(res.status, 201, res.body.toString());
    const [file] = res.json<{ files: UploadedFile[] }>().files;
    assert.ok(file);
    assert.equal(file.sha256, sha256(data));
    const got = await call(`${srv.url}/v1/files/${file.id}/content`);
    assert.equal(sha256(got.body), sha256(data));
    assert.deepEqual(await listPendingMultipartUploads(srv.s3!, srv.bucket!), []);
    const sizes = await partsOf(srv, file.id);
    assert.equal(sizes.reduce((a, b) => a + b, 0), total);
    assert.ok(sizes.length > 1 && sizes.length <= 4, `parts: ${sizes.join(', ')}`);
    return sizes;
  }

  for (const provider of ['minio', 'r2'] as const) {
    describe(`provider ${provider}`, () => {
      let srv: TestServer;
      before(async () => {
        srv = await startServer({
          backend: 's3',
          label: `parts-${provider}`,
          env: { SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0', SLUICE_S3_PROVIDER: provider, SLUICE_S3_CHECKSUM: 'when_supported', SLUICE_S3_MAX_PARTS: '4', SLUICE_MAX_FILE_BYTES: String(48 * MiB) },
        });
      });
      after(() => srv.close());

      it('a stream of unknown length fits the part limit', async () => {
        const sizes = await roundTrip(srv, 'stream');
        if (provider === 'r2') assert.equal(new Set(sizes.slice(0, -1)).size, 1, `parts: ${sizes.join(', ')}`);
        else assert.equal(sizes[0], 5 * MiB); // the configured size first; only later parts grow
      });

      it('a declared length gets equal parts that fit the limit', async () => {
        const sizes = await roundTrip(srv, 'declared');
        assert.equal(new Set(sizes.slice(0, -1)).size, 1, `parts: ${sizes.join(', ')}`);
      });
    });
  }
});
