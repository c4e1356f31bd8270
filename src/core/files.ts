// Reading, listing and deleting committed files. A file exists exactly when
// its manifest does; originals without one are uploads in flight (or debris
// for the reaper) and are invisible here.

import { SluiceError } from '../errors.ts';
import { bytesOf, readSmallObject, type Storage } from '../storage/storage.ts';
import { deleteMarker } from './jobs.ts';
import { fileKeys, isFileId, tenantPrefix } from './keys.ts';
import { parseManifest, type Manifest } from './manifest.ts';

/** Manifests fetched at once when listing: bounded, never one request per file at once. */
const LIST_FETCH_CONCURRENCY = 8;
export const LIST_MAX_LIMIT = 1000;
/** Ids a prefix-filtered listing request looks at, at most (one manifest read each). */
const FILTER_SCAN_MAX = 5000;

export async function writeManifest(storage: Storage, prefix: string, m: Manifest): Promise<void> {
  const keys = fileKeys(prefix, m.tenant, m.id);
  const body = Buffer.from(JSON.stringify(m, null, 2) + '\n');
  await storage.put(keys.manifest, bytesOf(body), { contentType: 'application/json' });
}

export async function readManifest(storage: Storage, prefix: string, tenant: string, id: string): Promise<Manifest> {
  if (!isFileId(id)) throw new SluiceError('FILE_NOT_FOUND');
  const keys = fileKeys(prefix, tenant, id);
  const raw = await readSmallObject(storage, keys.manifest);
  return parseManifest(JSON.parse(raw.toString('utf8')));
}

/** Uncommit first (manifest), then remove the rest, so readers never see a file without its bytes. */
export async function deleteFileObjects(storage: Storage, prefix: string, tenant: string, id: string): Promise<void> {
  const keys = fileKeys(prefix, tenant, id);
  await storage.delete(keys.manifest);
  await storage.delete(keys.original);
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix: keys.base, startAfter, limit: 1000 });
    for (const o of page.objects) await storage.delete(o.key);
    if (!page.truncated || page.objects.length === 0) break;
    startAfter = page.objects.at(-1)!.key;
  }
  await deleteMarker(storage, prefix, tenant, id); // job marker last: while it exists, a rescan still finds the file's leftovers
}

export interface FilePage {
  files: Manifest[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  nextCursor?: string;
}

/**
 * Committed files of a tenant, oldest first (ids are UUIDv7), paginated by
 * the last id seen. With `pathPrefix`, only files whose path starts with it.
 * Paths live in manifests, not keys, so a filtered page reads manifests until
 * `limit` matched or FILTER_SCAN_MAX ids were looked at: a page may then hold
 * fewer files than `limit` (even none) with a nextCursor, and each request's
 * cost stays bounded.
 */
export async function listFiles(
  storage: Storage,
  prefix: string,
  tenant: string,
  opts: { limit: number; cursor?: string | undefined; pathPrefix?: string | undefined },
): Promise<FilePage> {
  if (opts.cursor !== undefined && !isFileId(opts.cursor)) throw new SluiceError('INVALID_CURSOR');
  const base = tenantPrefix(prefix, tenant);
  const limit = Math.min(Math.max(1, opts.limit), LIST_MAX_LIMIT);
  const want = opts.pathPrefix;
  const files: Manifest[] = [];
  let cursor = opts.cursor;
  let scanned = 0;
  for (;;) {
    // "<id>0" sorts after every "<id>/..." key ("0" > "/") and before the next id.
    const startAfter = cursor ? `${base}${cursor}0` : undefined;
    const page = await storage.list({ prefix: base, delimiter: '/', startAfter, limit: want === undefined ? limit : Math.min(LIST_MAX_LIMIT, FILTER_SCAN_MAX - scanned) });
    const ids = page.prefixes.map((p) => p.slice(base.length, -1)).filter(isFileId);
    const manifests = await mapBounded(ids, LIST_FETCH_CONCURRENCY, async (id) => {
      try {
        return await readManifest(storage, prefix, tenant, id);
      } catch (err) {
        if ((err as SluiceError).code === 'FILE_NOT_FOUND') return null; // not committed (yet)
        throw err;
      }
    });
    scanned += ids.length;
    const lastId = ids.at(-1);
    if (want === undefined) {
      files.push(...manifests.filter((m): m is Manifest => m !== null));
      return page.truncated && lastId ? { files, nextCursor: lastId } : { files };
    }
    for (let i = 0; i < manifests.length; i++) {
      const m = manifests[i];
      if (!m || !(m.path ?? m.name).startsWith(want)) continue;
      files.push(m);
      // Full: the next page starts after the last file returned.
      if (files.length === limit) return i < ids.length - 1 || page.truncated ? { files, nextCursor: m.id } : { files };
    }
    if (!page.truncated || !lastId) return { files };
    if (scanned >= FILTER_SCAN_MAX) return { files, nextCursor: lastId };
    cursor = lastId;
  }
}

/** Map with at most `concurrency` calls in flight, results in input order. */
export async function mapBounded<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
