// Saving a file's manifest while its jobs run. Every state change is written
// through one saver per file, one write at a time, each a compare-and-swap on
// the etag of the version this saver wrote (or read) last: a DELETE between
// two saves makes the next one fail instead of writing the manifest back.

import { isSluiceError } from '../errors.ts';
import { writeManifest } from '../core/files.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest } from '../core/manifest.ts';
import type { Storage } from '../storage/storage.ts';
import { FileGone, LeftPending } from './control.ts';

export type SaveManifest = () => Promise<void>;

/**
 * A saver for `m`, read at version `etag`: each call writes its current state.
 * Rejects with FileGone once the file was deleted, and with LeftPending when
 * another writer changed the manifest (its marker keeps the work for a rescan).
 */
export function manifestSaver(storage: Storage, keyPrefix: string, m: Manifest, etag: string): SaveManifest {
  let current = etag;
  return serialSaver(async () => {
    try {
      current = await writeManifest(storage, keyPrefix, m, { ifMatch: current });
    } catch (err) {
      if (!isSluiceError(err) || err.code !== 'WRITE_CONFLICT') throw err;
      if (!(await storage.head(fileKeys(keyPrefix, m.tenant, m.id).manifest))) throw new FileGone();
      throw new LeftPending('the manifest was changed by another writer');
    }
  });
}

/**
 * Runs `write` one at a time. A call made while a write is already waiting to
 * start joins that one (it will write the latest state anyway), so bursts of
 * job completions cost one storage write, not one each.
 */
function serialSaver(write: () => Promise<void>): SaveManifest {
  let tail: Promise<void> = Promise.resolve();
  let queued: Promise<void> | undefined;
  return () => {
    if (queued) return queued;
    const next = tail.then(() => {
      queued = undefined;
      return write();
    }, () => {
      queued = undefined;
      return write();
    });
    queued = next;
    tail = next.catch(() => {});
    return next;
  };
}
