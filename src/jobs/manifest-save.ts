// Saving a file's manifest while its jobs run. Every state change is written
// through one saver per file, one write at a time.

import { writeManifest } from '../core/files.ts';
import { fileKeys } from '../core/keys.ts';
import type { Manifest } from '../core/manifest.ts';
import type { Storage } from '../storage/storage.ts';
import { FileGone } from './control.ts';

export type SaveManifest = () => Promise<void>;

/** A saver for `m`: each call writes its current state; rejects with FileGone once the file was deleted. */
export function manifestSaver(storage: Storage, keyPrefix: string, m: Manifest): SaveManifest {
  return serialSaver(async () => {
    const keys = fileKeys(keyPrefix, m.tenant, m.id);
    if (!(await storage.head(keys.manifest))) throw new FileGone();
    await writeManifest(storage, keyPrefix, m);
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
