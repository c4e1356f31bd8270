// A tus upload whose last byte arrived becomes a file like any other:
//   1. the assembled original is made durable (fsync on fs);
//   2. its sha256 and type: carried across the PATCHes when this process saw
//      every byte in order (carried-digest.ts); otherwise the original is
//      read back once, streaming, through the ingest stages (size limit, type
//      sniff with UTF-8 check, sha256): adoptStoredOriginal;
//   3. publishFiles writes the manifest (last), which is also where jobs attach.
// Only a refusal of the bytes (type, size, checksum) removes the upload: those
// bytes can never become a file. Any other failure (storage down, shutting
// down, a crash) leaves every byte where it is and the upload complete but
// uncommitted, so the next final PATCH or HEAD runs the finish again (the
// service holds the upload's lock across it, so only one runs at a time).
// The tus bookkeeping of a committed upload is kept until the upload would
// have expired: a client that lost the answer to its last PATCH then learns
// from HEAD that the upload is complete (Upload-Offset = length) instead of
// starting over; the sweep tidies it afterwards.

import { adoptStoredOriginal, describeOriginal } from '../core/adopt.ts';
import { publishFiles, type IngestDeps, type StagedFile } from '../core/ingest.ts';
import { isSluiceError, type ErrorCode } from '../errors.ts';
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

/** Failures that judge the bytes themselves: no retry can make them a file. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set(['TYPE_NOT_ALLOWED', 'TYPE_MISMATCH', 'FILE_TOO_LARGE', 'CHECKSUM_MISMATCH']);

export function isRefusal(err: unknown): boolean {
  return isSluiceError(err) && REFUSALS.has(err.code);
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
    if (isRefusal(err)) await removeUpload(deps, input);
    throw err;
  }
  // A failure here is storage's or the shutdown's, never the bytes': keep them for the retry.
  await publishFiles(deps, [staged]);
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
