// Image jobs on real images: outputs are auto-rotated and carry no EXIF or
// GPS; alpha and animation are kept where the format has them; corrupt
// images and pixel bombs fail their job with a clear code, and the original
// is untouched.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { call, sha256 } from './helpers/http.ts';
import { animatedGif, animatedWebp, jpegWithExifAndGps, pngBomb, pngWithAlpha, truncatedJpeg } from './helpers/images.ts';
import { markersLeft, startJobsServer, upload, waitForJobs, type JobsServer } from './helpers/jobs.ts';
import { backends, leftovers } from './helpers/server.ts';

describe('image jobs', () => {
  let srv: JobsServer;
  before(async () => {
    srv = await startJobsServer();
  });
  after(() => srv.close());

  async function variant(id: string, name: string): Promise<Buffer> {
    const res = await call(`${srv.url}/v1/files/${id}/variants/${name}`);
    assert.equal(res.status, 200, res.body.toString());
    return res.body;
  }

  it('rotates from EXIF and strips EXIF and GPS from every output', async () => {
    const input = await jpegWithExifAndGps();
    assert.ok((await sharp(input).metadata()).exif, 'the input carries EXIF');
    const f = await upload(srv.url, 'camera.jpg', input, { process: 'thumbnail,preview,webp,avif,jpeg' });
    const m = await waitForJobs(srv.url, f.id);
    for (const name of ['thumbnail', 'preview', 'webp', 'avif', 'jpeg']) {
      const job = m.jobs![name]!;
      assert.equal(job.state, 'done', `${name}: ${JSON.stringify(job)}`);
      const out = await variant(f.id, name);
      assert.equal(sha256(out), job.output!.sha256);
      const md = await sharp(out).metadata();
      assert.equal(md.exif, undefined, `${name} has no EXIF`);
      assert.ok(md.orientation === undefined || md.orientation === 1, `${name} needs no rotation`);
      // Stored 400×200 with orientation 6: displayed (and output) portrait.
      assert.ok(md.height! > md.width!, `${name} is portrait: ${md.width}×${md.height}`);
      assert.equal(job.output!.width, md.width);
      assert.equal(job.output!.height, md.height);
    }
    assert.deepEqual([m.jobs!.thumbnail!.output!.width, m.jobs!.thumbnail!.output!.height], [128, 256]);
    // Never enlarged: the 1024 px preview of a 200×400 image stays 200×400.
    assert.deepEqual([m.jobs!.preview!.output!.width, m.jobs!.preview!.output!.height], [200, 400]);
    // The original is byte-for-byte what was sent, EXIF and all.
    assert.equal(sha256((await call(`${srv.url}/v1/files/${f.id}/content`)).body), sha256(input));
  });

  it('keeps alpha in WebP and flattens it in JPEG', async () => {
    const f = await upload(srv.url, 'alpha.png', await pngWithAlpha(), { process: 'thumbnail,jpeg' });
    const m = await waitForJobs(srv.url, f.id);
    assert.equal(m.jobs!.thumbnail!.state, 'done');
    const thumb = await sharp(await variant(f.id, 'thumbnail')).metadata();
    assert.equal(thumb.format, 'webp');
    assert.equal(thumb.hasAlpha, true);
    const jpg = await sharp(await variant(f.id, 'jpeg')).metadata();
    assert.equal(jpg.format, 'jpeg');
    assert.equal(jpg.hasAlpha, false);
  });

  for (const [label, make] of [['GIF', animatedGif], ['WebP', animatedWebp]] as const) {
    it(`keeps the frames of an animated ${label} in WebP outputs, takes the first in JPEG`, async () => {
      const f = await upload(srv.url, `anim.${label.toLowerCase()}`, await make(), { process: 'thumbnail,jpeg' });
      const m = await waitForJobs(srv.url, f.id);
      assert.equal(m.jobs!.thumbnail!.state, 'done', JSON.stringify(m.jobs));
      assert.equal(m.jobs!.thumbnail!.output!.frames, 3);
      assert.deepEqual([m.jobs!.thumbnail!.output!.width, m.jobs!.thumbnail!.output!.height], [256, 192]);
      const thumb = await sharp(await variant(f.id, 'thumbnail'), { animated: true }).metadata();
      assert.equal(thumb.pages, 3);
      assert.equal(thumb.pageHeight, 192);
      const jpg = await sharp(await variant(f.id, 'jpeg')).metadata();
      assert.deepEqual([jpg.width, jpg.height], [640, 480]);
    });
  }

  it('fails the jobs of a truncated JPEG with IMAGE_INVALID and keeps the original', async () => {
    const input = await truncatedJpeg();
    const f = await upload(srv.url, 'cut.jpg', input, { process: 'thumbnail,webp' });
    const m = await waitForJobs(srv.url, f.id);
    for (const name of ['thumbnail', 'webp']) {
      assert.equal(m.jobs![name]!.state, 'failed');
      assert.equal(m.jobs![name]!.error!.code, 'IMAGE_INVALID');
      // The code is the contract; libvips' message text varies ("premature end of JPEG image", sometimes "Unknown error").
      assert.ok(m.jobs![name]!.error!.message.length > 0);
      assert.equal(m.jobs![name]!.attempts, 1, 'a corrupt image is not retried');
      const res = await call(`${srv.url}/v1/files/${f.id}/variants/${name}`);
      assert.equal(res.status, 404);
      assert.equal(res.json<{ error: { code: string } }>().error.code, 'VARIANT_NOT_FOUND');
    }
    assert.equal(sha256((await call(`${srv.url}/v1/files/${f.id}/content`)).body), sha256(input));
  });

  it('fails a pixel bomb with IMAGE_TOO_LARGE before decoding it', async () => {
    // 40000×40000 RGB would be 4.5 GiB decoded: a decode would blow far past the 1 GiB bound below,
    // which no healthy run comes near (the bound is for a decode, not for drift).
    const bomb = pngBomb(40_000, 40_000);
    assert.ok(bomb.length < 4096, `the bomb is tiny (${bomb.length} bytes)`);
    const rssBefore = process.memoryUsage().rss;
    const f = await upload(srv.url, 'bomb.png', bomb, { process: 'thumbnail' });
    const m = await waitForJobs(srv.url, f.id);
    assert.equal(m.jobs!.thumbnail!.state, 'failed');
    assert.equal(m.jobs!.thumbnail!.error!.code, 'IMAGE_TOO_LARGE');
    assert.match(m.jobs!.thumbnail!.error!.message, /pixel limit/);
    assert.ok(process.memoryUsage().rss - rssBefore < 1024 * 1024 * 1024, 'the bomb was not decoded');
    assert.equal((await call(`${srv.url}/v1/files/${f.id}/content`)).body.length, bomb.length);
  });

  it('skips image jobs on a file that is not an image, with the reason', async () => {
    const f = await upload(srv.url, 'notes.txt', Buffer.from('plain text\n'), { process: 'thumbnail' });
    const m = await waitForJobs(srv.url, f.id);
    assert.equal(m.jobs!.thumbnail!.state, 'skipped');
    assert.match(m.jobs!.thumbnail!.reason!, /not an image/);
  });
});

if (backends().includes('s3')) {
  describe('image jobs on s3', () => {
    it('writes outputs beside the original in the bucket, and a failed job leaves no object and no pending upload', async () => {
      const srv = await startJobsServer({ backend: 's3', label: 'jobs-images' });
      try {
        const good = await upload(srv.url, 'camera.jpg', await jpegWithExifAndGps(), { process: 'thumbnail,webp' });
        const bad = await upload(srv.url, 'cut.jpg', await truncatedJpeg(), { process: 'thumbnail' });
        const m = await waitForJobs(srv.url, good.id);
        assert.equal(m.jobs!.thumbnail!.state, 'done');
        assert.equal(m.jobs!.thumbnail!.output!.key, `sluice/default/${good.id}/variants/thumbnail`);
        const md = await sharp((await call(`${srv.url}/v1/files/${good.id}/variants/thumbnail`)).body).metadata();
        assert.equal(md.exif, undefined);
        assert.equal((await waitForJobs(srv.url, bad.id)).jobs!.thumbnail!.error!.code, 'IMAGE_INVALID');
        const left = await leftovers(srv as never);
        assert.equal(left.pending, 0);
        assert.deepEqual(left.keys.filter((k) => k.startsWith(`sluice/default/${bad.id}/`)).sort(), [`sluice/default/${bad.id}/manifest.json`, `sluice/default/${bad.id}/original`]);
        assert.deepEqual(await markersLeft(srv), [], 'markers are gone once jobs ended');
      } finally {
        await srv.close();
      }
    });
  });
}
