// Compression jobs: gzip, brotli and zstd outputs decompress to the original,
// byte for byte, on every backend (above S3's part size, so the streamed
// multipart path is exercised), with sizes and ratio in the manifest. Variants
// are served with the original's Range/ETag handling.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { backends, leftovers } from './helpers/server.ts';
import { call, jpeg, sha256 } from './helpers/http.ts';
import { startJobsServer, upload, waitForJobs, type JobsServer } from './helpers/jobs.ts';

/** Compressible text: log-like lines with some randomness, `bytes` long. */
function logText(bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const line = `2026-11-25T13:${String(i % 60).padStart(2, '0')}:00Z INFO request id=${randomBytes(6).toString('hex')} status=200 bytes=${i * 7}\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

const DECOMPRESS = { gzip: gunzipSync, brotli: brotliDecompressSync, zstd: zstdDecompressSync } as const;

for (const backend of backends()) {
  describe(`compression jobs on ${backend}`, () => {
    let srv: JobsServer;
    before(async () => {
      srv = await startJobsServer({ backend, label: 'jobs-compress' });
    });
    after(() => srv.close());

    it('round-trips gzip, brotli and zstd byte-identical and records the ratio', async () => {
      const input = logText(7 * 1024 * 1024);
      const f = await upload(srv.url, 'app.log', input, { process: 'gzip,brotli,zstd' });
      const m = await waitForJobs(srv.url, f.id);
      for (const algo of ['gzip', 'brotli', 'zstd'] as const) {
        const job = m.jobs![algo]!;
        assert.equal(job.state, 'done', `${algo}: ${JSON.stringify(job)}`);
        const res = await call(`${srv.url}/v1/files/${f.id}/variants/${algo}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.etag, `"${job.output!.sha256}"`);
        assert.equal(sha256(res.body), job.output!.sha256);
        assert.ok(DECOMPRESS[algo](res.body).equals(input), `${algo} decompresses to the original`);
        const c = job.output!.compression!;
        assert.equal(c.algorithm, algo);
        assert.equal(c.inputSize, input.length);
        assert.equal(c.outputSize, res.body.length);
        assert.ok(c.ratio > 0 && c.ratio < 0.5, `${algo} ratio ${c.ratio}`);
      }
      // Range on a variant, like on the original.
      const part = await call(`${srv.url}/v1/files/${f.id}/variants/gzip`, { headers: { range: 'bytes=0-9' } });
      assert.equal(part.status, 206);
      assert.equal(part.body.length, 10);
      assert.deepEqual([...part.body.subarray(0, 2)], [0x1f, 0x8b]);
      const cached = await call(`${srv.url}/v1/files/${f.id}/variants/gzip`, { headers: { 'if-none-match': `"${m.jobs!.gzip!.output!.sha256}"` } });
      assert.equal(cached.status, 304);
      // Deleting the file removes its variants and its job marker: nothing is left.
      assert.equal((await call(`${srv.url}/v1/files/${f.id}`, { method: 'DELETE' })).status, 204);
      assert.deepEqual(await leftovers(srv as never), { keys: [], pending: 0 });
    });

    it('skips already-compressed types by default and compresses them when asked', async () => {
      const img = await jpeg();
      const byDefault = await waitForJobs(srv.url, (await upload(srv.url, 'x.jpg', img, { process: 'gzip' })).id);
      assert.equal(byDefault.jobs!.gzip!.state, 'done', 'an explicit ask runs');
      const srv2 = await startJobsServer({ backend, label: 'jobs-compress-default', env: { SLUICE_JOBS_DEFAULTS: '*/*=gzip' } });
      try {
        const d = await waitForJobs(srv2.url, (await upload(srv2.url, 'y.jpg', img)).id);
        assert.equal(d.jobs!.gzip!.state, 'skipped');
        assert.match(d.jobs!.gzip!.reason!, /already compressed/);
        const t = await waitForJobs(srv2.url, (await upload(srv2.url, 'y.csv', Buffer.from('a,b\n1,2\n'), { contentType: 'text/csv' })).id);
        assert.equal(t.jobs!.gzip!.state, 'done');
        assert.ok(gunzipSync((await call(`${srv2.url}/v1/files/${t.id}/variants/gzip`)).body).equals(Buffer.from('a,b\n1,2\n')));
      } finally {
        await srv2.close();
      }
    });
  });
}
