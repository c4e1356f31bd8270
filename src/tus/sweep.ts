// The expiry sweep. Every tus upload has a marker under
// `<prefix>/_system/tus/pending/` from creation until its commit, so the sweep
// lists only those (never the whole bucket, never every multipart upload in
// it) and, for each marker older than the expiry plus a grace period:
//   - a committed file (manifest present): removes only the bookkeeping;
//   - otherwise: removes the upload from the tus store (aborting its S3
//     multipart upload), aborts any other pending multipart upload under the
//     file's keys, deletes every object under them, then the marker.
// Idempotent and safe to run from several instances at once; work is serial,
// so a large backlog costs time, not memory or connections.
//
// The ops reaper calls sweepExpiredUploads; the app also runs it on
// a timer (SLUICE_TUS_SWEEP_INTERVAL_MS).

import type { IngestDeps } from '../core/ingest.ts';
import { fileKeys } from '../core/keys.ts';
import { canSweepStale } from '../storage/storage.ts';
import { removeUpload, tidy } from './finish.ts';
import { parsePendingKey, pendingPrefix } from './keys.ts';
import type { TusStore } from './store.ts';

/** Expired uploads get this much longer, so the sweep never races a PATCH that tus still accepts. */
export const SWEEP_GRACE_MS = 60_000;

export interface SweepResult {
  /** Unfinished uploads removed. */
  expired: number;
  /** Markers of committed files tidied. */
  tidied: number;
}

export async function sweepExpiredUploads(
  deps: IngestDeps & { store: TusStore },
  opts: { now?: Date; expiryMs?: number } = {},
): Promise<SweepResult> {
  const { config, storage } = deps;
  const now = opts.now ?? new Date();
  const cutoff = now.getTime() - (opts.expiryMs ?? config.tus.expiryMs) - SWEEP_GRACE_MS;
  const result: SweepResult = { expired: 0, tidied: 0 };
  const prefix = pendingPrefix(config.keyPrefix);
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix, startAfter, limit: 1000 });
    for (const marker of page.objects) {
      if (marker.lastModified.getTime() > cutoff) continue;
      const ref = parsePendingKey(config.keyPrefix, marker.key);
      if (!ref) {
        await storage.delete(marker.key);
        continue;
      }
      const keys = fileKeys(config.keyPrefix, ref.tenant, ref.id);
      if (await storage.head(keys.manifest)) {
        await tidy(deps, ref);
        result.tidied++;
        continue;
      }
      if (canSweepStale(storage)) {
        // Multipart uploads of the original that the tus store no longer knows about: one lookup by
        // that key, so the cost stays per upload, not per pending multipart upload of the bucket.
        await storage.sweepStale({ prefix: keys.base, olderThan: now, key: keys.original });
      }
      await removeUpload(deps, ref);
      result.expired++;
    }
    if (!page.truncated || page.objects.length === 0) break;
    startAfter = page.objects.at(-1)!.key;
  }
  if (result.expired + result.tidied > 0) deps.log.info({ sweep: result }, 'tus expiry sweep');
  return result;
}
