// /metrics exposes the documented series, and they move when uploads, downloads
// and failures happen.

import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { call, pngOfSize } from './helpers/http.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';

function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (!want.every((w) => (m[2] ?? '').includes(w))) continue;
    total += Number(m[3]);
    seen = true;
  }
  return seen ? total : NaN;
}

const EXPECTED_SERIES = [
  'sluice_uploads_started_total', 'sluice_uploads_completed_total', 'sluice_uploads_failed_total', 'sluice_uploads_rejected_total',
  'sluice_uploads_inflight', 'sluice_upload_bytes_total', 'sluice_upload_duration_seconds', 'sluice_storage_operation_duration_seconds',
  'sluice_storage_errors_total', 'sluice_storage_bytes_total', 'sluice_upload_buffer_used_bytes', 'sluice_upload_buffer_capacity_bytes',
  'sluice_upload_buffer_waiting', 'sluice_job_queue_depth', 'sluice_job_duration_seconds', 'sluice_uv_threadpool_size',
  'sluice_reaper_removed_total', 'sluice_load_shed_total', 'sluice_http_requests_total',
  'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'process_resident_memory_bytes',
];

for (const backend of backends()) {
  describe(`metrics on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'metrics', env: { UV_THREADPOOL_SIZE: '6', SLUICE_MAX_FILE_BYTES: String(1024 * 1024) } });
    });
    after(() => srv.close());
    const scrape = async () => {
      const res = await call(`${srv.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      return res.body.toString();
    };

    it('exposes every documented series', async () => {
      const text = await scrape();
      for (const name of EXPECTED_SERIES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
      assert.equal(sample(text, 'sluice_uv_threadpool_size'), 6);
      assert.equal(sample(text, 'sluice_upload_buffer_capacity_bytes'), srv.config.uploadBufferBytes);
    });

    it('counts committed and failed uploads, bytes in and out, storage latency', async () => {
      const before = await scrape();
      const data = await pngOfSize(300_000);
      const put = await call(`${srv.url}/v1/files/m.png`, { method: 'PUT', body: data });
      assert.equal(put.status, 201);
      const id = put.json<{ files: { id: string }[] }>().files[0]!.id;
      const bad = await call(`${srv.url}/v1/files/m.exe`, { method: 'PUT', body: Buffer.from('MZ\x90\x00'.padEnd(512, '\0')) });
      assert.equal(bad.status, 415);
      // Refused from its Content-Length, before the body is read (the client may see the close instead).
      const big = await call(`${srv.url}/v1/files/big.png`, { method: 'PUT', body: await pngOfSize(1024 * 1024 + 1) }).catch(() => null);
      if (big) assert.equal(big.status, 413);
      const got = await call(`${srv.url}/v1/files/${id}/content`);
      assert.equal(got.body.length, data.length);
      const after = await scrape();

      const route = { route: '/v1/files/:name' };
      const delta = (name: string, labels: Record<string, string> = {}) => (sample(after, name, labels) || 0) - (sample(before, name, labels) || 0);
      assert.equal(delta('sluice_uploads_started_total', route), 2);
      assert.equal(delta('sluice_uploads_completed_total', route), 1);
      assert.equal(delta('sluice_uploads_failed_total', { ...route, reason: 'TYPE_NOT_ALLOWED' }), 1);
      assert.equal(delta('sluice_uploads_rejected_total', { ...route, reason: 'FILE_TOO_LARGE' }), 1);
      assert.equal(delta('sluice_upload_bytes_total'), data.length);
      assert.equal(delta('sluice_upload_duration_seconds_count', { ...route, outcome: 'committed' }), 1);
      assert.ok(delta('sluice_storage_bytes_total', { backend, direction: 'in' }) >= data.length);
      assert.ok(delta('sluice_storage_bytes_total', { backend, direction: 'out' }) >= data.length);
      assert.ok(delta('sluice_storage_operation_duration_seconds_count', { backend, op: 'put', outcome: 'ok' }) >= 2, 'original and manifest');
      assert.ok(delta('sluice_storage_operation_duration_seconds_count', { backend, op: 'get', outcome: 'ok' }) >= 2, 'manifest and content');
      assert.ok(delta('sluice_http_requests_total', { method: 'PUT', route: '/v1/files/:name', status: '201' }) === 1);
      assert.equal(sample(after, 'sluice_uploads_inflight', route), 0);
      assert.equal(sample(after, 'sluice_upload_buffer_used_bytes'), 0);
    });

    if (backend === 's3') {
      it('a small file with no jobs costs the store two requests: the original and the manifest, one PutObject each', async () => {
        const before = await scrape();
        const put = await call(`${srv.url}/v1/files/two.png`, { method: 'PUT', body: await pngOfSize(64 * 1024) });
        assert.equal(put.status, 201);
        const after = await scrape();
        const delta = (labels: Record<string, string> = {}) =>
          (sample(after, 'sluice_storage_requests_total', labels) || 0) - (sample(before, 'sluice_storage_requests_total', labels) || 0);
        assert.equal(delta({ operation: 'PutObjectCommand' }), 2);
        assert.equal(delta(), 2, 'no other request (no HEAD, no multipart upload)');
      });
    }
  });
}
