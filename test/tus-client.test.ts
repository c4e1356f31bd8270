// tus-js-client, a real second client, uploads through /v1/uploads in several
// PATCHes; the result is a committed file like any other: byte-identical,
// listed, with a manifest.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Upload } from 'tus-js-client';
import { readManifest } from '../src/core/files.ts';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256 } from './helpers/http.ts';

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
  });
}
