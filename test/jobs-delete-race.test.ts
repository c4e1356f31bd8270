// A DELETE that lands while a job is saving the file's manifest must win: the
// file stays deleted, with nothing of it left behind. Before, a job save
// checked that the manifest existed and then wrote it; a DELETE between the
// two left a manifest whose original was gone, listed forever (the reaper
// keeps folders with a manifest). The race is forced: the job's first save is
// held in the storage port until the DELETE has answered.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { fileKeys } from '../src/core/keys.ts';
import { markerKey } from '../src/core/jobs.ts';
import { call } from './helpers/http.ts';
import { FaultyStorage } from './helpers/faulty-storage.ts';
import { startJobsServer, upload, type JobsServer } from './helpers/jobs.ts';
import { backends } from './helpers/server.ts';

/** Until the job service holds no file (it ended or left what it had). */
async function jobsIdle(srv: JobsServer): Promise<void> {
  while (srv.jobs.stats().activeFiles > 0) await sleep(20);
}

for (const backend of backends()) {
  describe(`a delete racing a job's manifest save on ${backend}`, () => {
    it('leaves the file deleted: no manifest written back, no original, variant or marker left', async () => {
      let faulty!: FaultyStorage;
      const srv = await startJobsServer({ backend, label: 'delete-race', wrapStorage: (s) => (faulty = new FaultyStorage(s)) });
      try {
        const body = Buffer.from('a log line that compresses well\n'.repeat(20_000));
        let letGo!: (v: { fail: boolean }) => void;
        const release = new Promise<{ fail: boolean }>((r) => (letGo = r));
        let saveHeld!: () => void;
        const held = new Promise<void>((r) => (saveHeld = r));
        // One file on this server: its first manifest write is the commit, the second the job's first save.
        let manifestPuts = 0;
        faulty.putFault = (key) => {
          if (!key.endsWith('/manifest.json') || ++manifestPuts !== 2) return undefined;
          saveHeld();
          return { kind: 'hold', release };
        };
        const { id } = await upload(srv.url, 'race.log', body, { process: 'gzip' });
        await held;

        const del = await call(`${srv.url}/v1/files/${id}`, { method: 'DELETE' });
        assert.equal(del.status, 204, del.body.toString());
        letGo({ fail: false });
        await jobsIdle(srv);

        const keys = fileKeys(srv.config.keyPrefix, 'default', id);
        assert.equal(await srv.storage.head(keys.manifest), null, 'the deleted manifest was not written back');
        assert.equal((await call(`${srv.url}/v1/files/${id}`)).status, 404);
        const left = await srv.storage.list({ prefix: keys.base });
        assert.deepEqual(left.objects.map((o) => o.key), [], 'nothing of the file is left');
        assert.equal(await srv.storage.head(markerKey(srv.config.keyPrefix, 'default', id)), null, 'no marker left');
      } finally {
        await srv.close();
      }
    });
  });
}
