// Where a resumable upload lives. The tus store writes the upload in place at
// the file's final key, so finishing needs no copy:
//
//   <prefix>/<tenant>/<id>/original            the bytes, assembled by the tus store
//   <prefix>/<tenant>/<id>/original.info|.part S3 store bookkeeping (removed at commit)
//   <prefix>/<tenant>/<id>/original.json       fs store bookkeeping (removed at commit)
//   <prefix>/_system/tus/pending/<tenant>/<id> marker: an upload not yet committed (the sweep's index)
//   <prefix>/_system/tus/locks/<tenant>/<id>   S3 lock held while a request writes the upload
//
// Until the manifest is written the file is invisible, like any upload in flight.
// The upload URL carries only <id>; the tenant comes from the request, so one
// tenant's URL resolves to nothing for another.

import { fileKeys, isFileId, isTenant, systemPrefix, uploadMarkerPrefix } from '../core/keys.ts';

export interface UploadRef {
  tenant: string;
  id: string;
}

/** The tus store's upload id: the storage key of the original. */
export function uploadKey(prefix: string, ref: UploadRef): string {
  return fileKeys(prefix, ref.tenant, ref.id).original;
}

/** Inverse of uploadKey; undefined for anything that is not one. */
export function parseUploadKey(prefix: string, key: string): UploadRef | undefined {
  const m = /^(.+)\/([^/]+)\/([^/]+)\/original$/.exec(key);
  if (!m || m[1] !== prefix || !isTenant(m[2]!) || !isFileId(m[3]!)) return undefined;
  return { tenant: m[2]!, id: m[3]! };
}

/** Bookkeeping objects the tus stores keep beside the upload. */
export function bookkeepingKeys(prefix: string, ref: UploadRef): string[] {
  const key = uploadKey(prefix, ref);
  return [`${key}.info`, `${key}.part`, `${key}.json`];
}

export function pendingPrefix(prefix: string): string {
  return uploadMarkerPrefix(prefix);
}

export function pendingKey(prefix: string, ref: UploadRef): string {
  return `${pendingPrefix(prefix)}${ref.tenant}/${ref.id}`;
}

export function parsePendingKey(prefix: string, key: string): UploadRef | undefined {
  const rest = key.startsWith(pendingPrefix(prefix)) ? key.slice(pendingPrefix(prefix).length) : '';
  const [tenant, id, extra] = rest.split('/');
  if (extra !== undefined || !tenant || !id || !isTenant(tenant) || !isFileId(id)) return undefined;
  return { tenant, id };
}

export function lockKey(prefix: string, ref: UploadRef): string {
  return `${systemPrefix(prefix)}tus/locks/${ref.tenant}/${ref.id}`;
}
