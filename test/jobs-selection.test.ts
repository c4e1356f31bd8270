// Which jobs run: per-type defaults from config, a `process` query parameter
// or multipart field, `none` for no jobs. An unknown job is refused with 400
// UNKNOWN_JOB before anything is stored.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, jpeg, multipartBody, type UploadedFile } from './helpers/http.ts';
import { startJobsServer, waitForJobs, upload, type JobsServer } from './helpers/jobs.ts';
import { leftovers } from './helpers/server.ts';

describe('job selection', () => {
  let srv: JobsServer;
  before(async () => {
    srv = await startJobsServer();
  });
  after(() => srv.close());

  it('runs the per-type defaults when nothing is asked', async () => {
    const img = await waitForJobs(srv.url, (await upload(srv.url, 'a.jpg', await jpeg())).id);
    assert.deepEqual(Object.keys(img.jobs!), ['thumbnail']);
    assert.equal(img.jobs!.thumbnail!.state, 'done');
    const txt = await waitForJobs(srv.url, (await upload(srv.url, 'a.txt', Buffer.from('hello\n'))).id);
    assert.deepEqual(Object.keys(txt.jobs!), ['gzip']);
    const pdfLike = await waitForJobs(srv.url, (await upload(srv.url, 'a.bin', Buffer.from('%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1'))).id);
    assert.equal(pdfLike.jobs, undefined, 'no rule for PDF: no jobs');
  });

  it('takes ?process= on PUT, and none means no jobs', async () => {
    const f = await waitForJobs(srv.url, (await upload(srv.url, 'b.jpg', await jpeg(), { process: 'webp,gzip' })).id);
    assert.deepEqual(Object.keys(f.jobs!).sort(), ['gzip', 'webp']);
    const none = await waitForJobs(srv.url, (await upload(srv.url, 'c.jpg', await jpeg(), { process: 'none' })).id);
    assert.equal(none.jobs, undefined);
  });

  it('takes a process field (per file or for all) on POST, before the file part', async () => {
    const img = await jpeg();
    const form = multipartBody([
      { name: 'process', data: 'webp' },
      { name: 'a', filename: 'a.jpg', contentType: 'image/jpeg', data: img },
      { name: 'b.process', data: 'thumbnail,avif' },
      { name: 'b', filename: 'b.jpg', contentType: 'image/jpeg', data: img },
    ]);
    const res = await call(`${srv.url}/v1/files?process=gzip`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
    assert.equal(res.status, 201, res.body.toString());
    const [a, b] = res.json<{ files: UploadedFile[] }>().files;
    assert.deepEqual(Object.keys((await waitForJobs(srv.url, a!.id)).jobs!), ['webp']);
    assert.deepEqual(Object.keys((await waitForJobs(srv.url, b!.id)).jobs!).sort(), ['avif', 'thumbnail']);
  });

  const bad: [string, string][] = [
    ['an unknown job name', 'thumbnail,sepia'],
    ['characters outside job names', 'webp;rm'],
    ['an over-long value', 'webp,'.repeat(200)],
  ];
  for (const [label, value] of bad) {
    it(`refuses ${label} with 400 UNKNOWN_JOB and stores nothing`, async () => {
      const before = await leftovers(srv as never);
      const put = await call(`${srv.url}/v1/files/x.jpg?process=${encodeURIComponent(value)}`, { method: 'PUT', body: await jpeg() });
      assert.equal(put.status, 400);
      assert.equal(put.json<{ error: { code: string } }>().error.code, 'UNKNOWN_JOB');
      const form = multipartBody([
        { name: 'process', data: value },
        { name: 'a', filename: 'a.jpg', contentType: 'image/jpeg', data: await jpeg() },
      ]);
      const post = await call(`${srv.url}/v1/files`, { method: 'POST', body: form.body, headers: { 'content-type': form.contentType } });
      assert.equal(post.status, 400);
      assert.equal(post.json<{ error: { code: string } }>().error.code, 'UNKNOWN_JOB');
      assert.deepEqual(await leftovers(srv as never), before);
    });
  }
});
