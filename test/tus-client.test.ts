// tus-js-client, a real second client, uploads through /v1/uploads in several
// PATCHes; the result is a committed file like any other: byte-identical,
// listed, with a manifest.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DetailedError, Upload } from 'tus-js-client';
import { readManifest } from '../src/core/files.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, elf, pngOfSize, sha256 } from './helpers/http.ts';

/** Runs an upload that must fail; resolves with the error tus-js-client reported. */
function failedUpload(body: Buffer, opts: ConstructorParameters<typeof Upload>[1]): Promise<DetailedError> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(body, {
      ...opts,
      retryDelays: [],
      onError: (err) => (err instanceof DetailedError ? resolve(err) : reject(err)),
      onSuccess: () => reject(new Error('the upload was accepted')),
    });
    upload.start();
  });
}

function codeOf(err: DetailedError): { status: number; code: string } {
  const res = err.originalResponse;
  assert.ok(res, `an answer from the server: ${err.message}`);
  return { status: res.getStatus(), code: JSON.parse(res.getBody()).error.code };
}

for (const backend of backends()) {
  describe(`tus-js-client on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ backend, label: 'tus-client' });
    });
    after(() => srv.close());

    it('uploads in 5 MiB PATCHes and the file is committed byte-identical', async () => {
      const data = await pngOfSize(12 * 1024 * 1024 + 12345);
      const patches: number[] = [];
      const fileId = await new Promise<string>((resolve, reject) => {
        const upload = new Upload(data, {
          endpoint: `${srv.url}/v1/uploads`,
          chunkSize: 5 * 1024 * 1024,
          metadata: { filename: 'holiday.png', filetype: 'image/png' },
          retryDelays: [],
          onChunkComplete: (size) => patches.push(size),
          onError: reject,
          onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('sluice-file-id') ?? ''),
        });
        upload.start();
      });
      assert.equal(patches.length, 3, 'three PATCH requests');
      assert.match(fileId, /^[0-9a-f-]{36}$/);

      const meta = await call(`${srv.url}/v1/files/${fileId}`);
      assert.equal(meta.status, 200);
      const view = meta.json<{ name: string; size: number; sha256: string; type: { mime: string } }>();
      assert.equal(view.name, 'holiday.png');
      assert.equal(view.size, data.length);
      assert.equal(view.sha256, sha256(data));
      assert.equal(view.type.mime, 'image/png');

      const content = await call(`${srv.url}/v1/files/${fileId}/content`);
      assert.equal(sha256(content.body), sha256(data));

      const manifest = await readManifest(srv.storage, srv.config.keyPrefix, 'default', fileId);
      assert.equal(manifest.sha256, sha256(data));
      assert.equal(manifest.original.key, `${srv.config.keyPrefix}/default/${fileId}/original`);

      const list = await call(`${srv.url}/v1/files`);
      assert.deepEqual(list.json<{ files: { id: string }[] }>().files.map((f) => f.id), [fileId]);
    });

    it('refusals reach the client with our JSON body: a disallowed type at the first PATCH, a size over the limit at creation', async () => {
      const refused = await failedUpload(Buffer.concat([elf(), Buffer.alloc(3 * 1024 * 1024)]), { endpoint: `${srv.url}/v1/uploads`, chunkSize: 1024 * 1024, metadata: { filename: 'tool' } });
      assert.deepEqual(codeOf(refused), { status: 415, code: 'TYPE_NOT_ALLOWED' });
      const tooLarge = await failedUpload(Buffer.alloc(16), {
        endpoint: `${srv.url}/v1/uploads`,
        uploadSize: srv.config.limits.fileBytes + 1,
        metadata: { filename: 'huge.bin' },
      });
      assert.deepEqual(codeOf(tooLarge), { status: 413, code: 'FILE_TOO_LARGE' });
    });

    it('an upload whose offset moved on the server is resumed by the client after its 409 UPLOAD_OFFSET_MISMATCH', async () => {
      const data = await pngOfSize(3 * 1024 * 1024);
      const answers: number[] = [];
      const fileId = await new Promise<string>((resolve, reject) => {
        const upload = new Upload(data, {
          endpoint: `${srv.url}/v1/uploads`,
          chunkSize: 1024 * 1024,
          metadata: { filename: 'moved.png' },
          retryDelays: [0, 0],
          onAfterResponse: async (req, res) => {
            answers.push(res.getStatus());
            // After the first PATCH, another client of the same upload sends its second MiB behind this one's back.
            if (req.getMethod() === 'PATCH' && answers.filter((s) => s === 204).length === 1 && res.getStatus() === 204) {
              const sent = await call(req.getURL(), {
                method: 'PATCH',
                headers: { 'tus-resumable': '1.0.0', 'upload-offset': String(1024 * 1024), 'content-type': 'application/offset+octet-stream' },
                body: data.subarray(1024 * 1024, 2 * 1024 * 1024),
              });
              assert.equal(sent.status, 204);
            }
          },
          onError: reject,
          onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('sluice-file-id') ?? ''),
        });
        upload.start();
      });
      assert.ok(answers.includes(409), `a 409 was answered: ${answers.join(',')}`);
      const file = await call(`${srv.url}/v1/files/${fileId}`);
      assert.equal(file.json<{ sha256: string }>().sha256, sha256(data));
    });
  });
}
