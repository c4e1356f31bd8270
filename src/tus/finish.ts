// A tus upload whose last byte arrived becomes a file like any other:
//   1. the assembled original is made durable (fsync on fs);
//   2. its sha256 and type: carried across the PATCHes when this process saw
//      every byte in order (carried-digest.ts); otherwise the original is
//      read back once, streaming, through the ingest stages (size limit, type
//      sniff with UTF-8 check, sha256): adoptStoredOriginal;
//   3. commitFiles writes the manifest (last), which is also where jobs attach.
// A refusal or failure removes the upload entirely, so nothing half-committed
// stays behind. The tus bookkeeping of a committed upload is kept until the
// upload would have expired: a client that lost the answer to its last PATCH
// then learns from HEAD that the upload is complete (Upload-Offset = length)
// instead of starting over; the sweep tidies it afterwards.

import { adoptStoredOriginal, describeOriginal } from '../core/adopt.ts';
import { commitFiles, type IngestDeps, type StagedFile } from '../core/ingest.ts';
import { deleteFileObjects } from '../core/files.ts';
import type { TusStore } from './store.ts';
import { bookkeepingKeys, pendingKey, uploadKey, type UploadRef } from './keys.ts';

export interface FinishInput extends UploadRef {
  /** Upload-Length: every byte of it has arrived. */
  size: number;
  name: string;
  declaredType: string | undefined;
  signal: AbortSignal;
}

export async function finishUpload(deps: IngestDeps & { store: TusStore }, input: FinishInput): Promise<StagedFile> {
  const { config } = deps;
  let staged: StagedFile;
  try {
    const key = uploadKey(config.keyPrefix, input);
    await deps.store.flush(key);
    const carried = deps.store.takeDigest(key, input.size);
    staged = carried ? describeOriginal(config, input, carried) : await adoptStoredOriginal(deps, input);
    deps.log.debug({ fileId: input.id, digest: carried ? 'carried' : 'read-back' }, 'tus upload digested');
  } catch (err) {
    await removeUpload(deps, input);
    throw err;
  }
  try {
    // On failure commitFiles has already removed the original (discardStaged).
    await commitFiles(deps, [staged]);
  } catch (err) {
    await removeUpload(deps, input);
    throw err;
  }
  return staged;
}

/** Remove the bookkeeping of a committed upload; never the original. Failures are logged: the sweep retries. */
export async function tidy(deps: IngestDeps, ref: UploadRef): Promise<void> {
  const { config, storage } = deps;
  for (const key of [...bookkeepingKeys(config.keyPrefix, ref), pendingKey(config.keyPrefix, ref)]) {
    try {
      await storage.delete(key);
    } catch (err) {
      deps.log.warn({ err, key }, 'could not remove tus bookkeeping; the sweep will');
    }
  }
}

/** Remove every trace of an uncommitted upload: the tus store's state, any object under the file's keys, the marker. */
export async function removeUpload(deps: IngestDeps & { store: TusStore }, ref: UploadRef): Promise<void> {
  const { config, storage } = deps;
  try {
    await deps.store.remove(uploadKey(config.keyPrefix, ref));
  } catch {
    // Already gone, or never created: the deletes below cover what is left.
  }
  try {
    await deleteFileObjects(storage, config.keyPrefix, ref.tenant, ref.id);
    await storage.delete(pendingKey(config.keyPrefix, ref));
  } catch (err) {
    deps.log.error({ err, upload: ref }, 'could not remove an abandoned tus upload; the sweep will');
  }
}
