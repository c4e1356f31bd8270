// The storage key layout, which S3 consumers rely on (docs/storage-layout.md):
//
//   <prefix>/<tenant>/<id>/original          the bytes as uploaded, never changed
//   <prefix>/<tenant>/<id>/manifest.json     written last: the commit record
//   <prefix>/<tenant>/<id>/variants/<name>   outputs of processing jobs
//   <prefix>/_system/...                     service state (job markers, ...)
//
// Tenants cannot start with "_", so nothing collides with _system.

import { v7 as uuidv7, validate as uuidValidate, version as uuidVersion } from 'uuid';

export const DEFAULT_TENANT = 'default';
const TENANT_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Time-ordered (UUIDv7), so listings come back oldest first. */
export function newFileId(): string {
  return uuidv7();
}

export function isFileId(id: string): boolean {
  return id.length === 36 && uuidValidate(id) && uuidVersion(id) === 7;
}

export function isTenant(t: string): boolean {
  return TENANT_RE.test(t);
}

export interface FileKeys {
  base: string;
  original: string;
  manifest: string;
  variant(name: string): string;
}

export function tenantPrefix(prefix: string, tenant: string): string {
  if (!isTenant(tenant)) throw new Error(`invalid tenant ${JSON.stringify(tenant)}`);
  return `${prefix}/${tenant}/`;
}

export function fileKeys(prefix: string, tenant: string, id: string): FileKeys {
  const base = `${tenantPrefix(prefix, tenant)}${id}/`;
  return {
    base,
    original: `${base}original`,
    manifest: `${base}manifest.json`,
    variant: (name) => `${base}variants/${name}`,
  };
}

export function systemPrefix(prefix: string): string {
  return `${prefix}/_system/`;
}

/**
 * Markers of resumable uploads not yet committed (`<this>/<tenant>/<id>`): written at
 * creation, removed at commit or expiry (src/tus/). The reaper never touches a file
 * that has one.
 */
export function uploadMarkerPrefix(prefix: string): string {
  return `${systemPrefix(prefix)}tus/pending/`;
}
