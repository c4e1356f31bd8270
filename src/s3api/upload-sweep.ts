// Multipart uploads of the S3 endpoint that were neither completed nor
// aborted: their parts (under _system/s3/<tenant>/uploads/<id>/) would cost
// storage forever. The reaper removes an upload whose newest object (its
// record or any part) is older than its max age, as S3's
// AbortIncompleteMultipartUpload lifecycle rule does for a bucket's own
// uploads. The max age exceeds the total deadline of any request (config.ts),
// so a CompleteMultipartUpload still reading the parts is never swept under it.
// Cost per sweep: a delimited listing of tenants and of each tenant's uploads,
// and one listing per upload; the per-key index (objects/) is never listed.

import type { Storage } from '../storage/storage.ts';
import { s3StatePrefix } from './object-index.ts';

/** Removes one upload's state; the upload record goes last, so until it is gone the upload can still be aborted (and its parts found). */
export async function removeS3Upload(storage: Storage, base: string): Promise<void> {
  for (;;) {
    const page = await storage.list({ prefix: `${base}parts/`, limit: 1000 });
    for (const o of page.objects) await storage.delete(o.key);
    if (!page.truncated || page.objects.length === 0) break;
  }
  await storage.delete(`${base}upload.json`);
}

/** Removes every upload whose newest object is older than `olderThan`; returns how many. */
export async function sweepAbandonedS3Uploads(storage: Storage, keyPrefix: string, olderThan: Date): Promise<number> {
  let removed = 0;
  for await (const tenant of folders(storage, s3StatePrefix(keyPrefix))) {
    for await (const upload of folders(storage, `${tenant}uploads/`)) {
      if ((await newest(storage, upload)) >= olderThan.getTime()) continue;
      await removeS3Upload(storage, upload);
      removed++;
    }
  }
  return removed;
}

/**
 * The folders (ending in '/') directly under `prefix`, page by page. Their names
 * (tenants, upload ids) are lowercase ASCII, so a page resumes after
 * `<last folder>~`, past every key inside the last folder, whatever the backend's
 * rule for a start key equal to a common prefix.
 */
async function* folders(storage: Storage, prefix: string): AsyncGenerator<string> {
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix, delimiter: '/', startAfter, limit: 1000 });
    yield* page.prefixes;
    const last = page.prefixes.at(-1);
    if (!page.truncated || last === undefined) return;
    startAfter = `${last}~`;
  }
}

async function newest(storage: Storage, base: string): Promise<number> {
  let latest = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix: base, startAfter, limit: 1000 });
    for (const o of page.objects) latest = Math.max(latest, o.lastModified.getTime());
    if (!page.truncated || page.objects.length === 0) return latest;
    startAfter = page.objects.at(-1)!.key;
  }
}
