// A finished tus upload survives a failed finish, and is finished once.
//   - Storage down at the commit (the manifest write fails): the upload stays
//     complete and resumable, and the next HEAD or zero-byte final PATCH
//     commits it; before, the finish removed every byte on any failure.
//   - Two finishes of one upload: the first is held at its manifest write, a
//     retried zero-byte final PATCH arrives meanwhile. It must wait for the
//     upload's lock (here: time out with 423) instead of running a second
//     finish beside the first; when the first then fails, nothing that was
//     acknowledged is lost, and the retry commits the file.
// Real fs and MinIO behind a fault switch on the storage port (faulty-storage.ts).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends, startServer, type TestServer } from './helpers/server.ts';
import { call, pngOfSize, sha256, type Answer } from './helpers/http.ts';
import { createUpload, head, patch } from './helpers/tus.ts';
import { FaultyStorage } from './helpers/faulty-storage.ts';

const isManifest = (key: string) => key.endsWith('/manifest.json');

async function fileSha(srv: TestServer, id: string): Promise<string | undefined> {
  const res = await call(`${srv.url}/v1/files/${id}/content`);
  return res.status === 200 ? sha256(res.body) : undefined;
}

for (const backend of backends()) {
  describe(`tus finish under faults on ${backend}`, () => {
    let srv: TestServer;
    let faulty: FaultyStorage;
    before(async () => {
      srv = await startServer({
        backend,
        label: 'tus-finish',
        env: { SLUICE_TUS_LOCK_TIMEOUT_MS: '1000' },
        wrapStorage: (s) => (faulty = new FaultyStorage(s)),
      });
    });
    after(() => srv.close());

    it('a storage outage at the commit keeps the upload; HEAD then commits it', async () => {
      const data = await pngOfSize(300_000);
      const { url } = await createUpload(srv.url, data.length, { filename: 'outage.png', filetype: 'image/png' });
      faulty.putFault = (key) => (isManifest(key) ? { kind: 'down' } : undefined);
      const failed = await patch(url, 0, data);
      assert.equal(failed.status, 503, failed.body.toString());
      assert.equal(failed.json<{ error: { code: string } }>().error.code, 'STORAGE_UNAVAILABLE');

      // Still there, complete, still uncommitted while storage is down.
      const down = await head(url);
      assert.equal(down.status, 503, 'HEAD tries the commit and reports the outage');
      faulty.putFault = () => undefined;
      const back = await head(url);
      assert.equal(back.status, 200);
      assert.equal(back.headers['upload-offset'], String(data.length));
      const id = String(back.headers['sluice-file-id'] ?? '');
      assert.ok(id, 'HEAD names the committed file');
      assert.equal(await fileSha(srv, id), sha256(data), 'every byte kept across the failed finish');
    });

    it('a storage outage at the commit keeps the upload; a zero-byte final PATCH commits it', async () => {
      const data = await pngOfSize(200_000);
      const { url } = await createUpload(srv.url, data.length, { filename: 'retry.png', filetype: 'image/png' });
      faulty.putFault = (key) => (isManifest(key) ? { kind: 'down' } : undefined);
      assert.equal((await patch(url, 0, data)).status, 503);
      faulty.putFault = () => undefined;
      const retried = await patch(url, data.length, Buffer.alloc(0));
      assert.equal(retried.status, 204, retried.body.toString());
      const id = String(retried.headers['sluice-file-id'] ?? '');
      assert.equal(await fileSha(srv, id), sha256(data));
    });

    it('a second final PATCH waits for the running finish; a failed finish loses nothing acknowledged', async () => {
      const data = await pngOfSize(250_000);
      const { url } = await createUpload(srv.url, data.length, { filename: 'twice.png', filetype: 'image/png' });
      let letGo!: (v: { fail: boolean }) => void;
      const release = new Promise<{ fail: boolean }>((r) => (letGo = r));
      let held = false;
      let firstHeld!: () => void;
      const firstIsHeld = new Promise<void>((r) => (firstHeld = r));
      let secondStarted!: () => void;
      const secondStarts = new Promise<'second finish'>((r) => (secondStarted = () => r('second finish')));
      faulty.onPut = (key) => {
        if (!isManifest(key)) return;
        if (!held) firstHeld();
        else secondStarted();
      };
      faulty.putFault = (key) => {
        if (!isManifest(key) || held) return undefined;
        held = true;
        return { kind: 'hold', release };
      };
      const answers: Answer[] = [];
      const first = patch(url, 0, data).then((a) => (answers.push(a), a));
      await firstIsHeld;
      const second = patch(url, data.length, Buffer.alloc(0)).then((a) => (answers.push(a), a));
      // Either the second PATCH is answered (it waited for the lock), or it started a finish of its own.
      const outcome = await Promise.race([second.then(() => 'answered' as const), secondStarts]);
      letGo({ fail: true });
      await Promise.all([first, second]);
      faulty.onPut = () => {};
      faulty.putFault = () => undefined;

      const manifestKeys = [...faulty.maxInFlight.keys()].filter((k) => isManifest(k) && k.includes(url.split('/').at(-1)!));
      assert.deepEqual(manifestKeys.map((k) => faulty.maxInFlight.get(k)), [1], 'one finish at a time');
      assert.equal(outcome, 'answered', 'the second PATCH did not run a finish beside the first');
      // Whatever was acknowledged with a file id must be readable.
      for (const a of answers) {
        const id = a.headers['sluice-file-id'];
        if (id) assert.equal(await fileSha(srv, String(id)), sha256(data), `acknowledged file ${String(id)} is there`);
      }
      const third = await patch(url, data.length, Buffer.alloc(0));
      assert.equal(third.status, 204, third.body.toString());
      assert.equal(await fileSha(srv, String(third.headers['sluice-file-id'])), sha256(data));
    });
  });
}
