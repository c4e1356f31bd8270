// Which jobs a file gets, their initial records, and the durable index of
// unfinished work. The index is one small marker object per file under
//   <prefix>/_system/jobs/<tenant>/<id>
// written by commitFiles *before* the manifest and removed once the file's
// jobs have all ended and its webhook (if any) was delivered. Recovery lists
// only this prefix, never the whole bucket.

import { z } from 'zod';
import type { Config } from '../config.ts';
import { COMPRESS_JOBS, CONVERT_JOBS, type CompressAlgorithm, type ImageFormat } from './job-names.ts';
import { SluiceError } from '../errors.ts';
import { bytesOf, type Storage } from '../storage/storage.ts';
import type { FileType } from './file-types.ts';
import { isAllowed } from './file-types.ts';
import { systemPrefix, tenantPrefix } from './keys.ts';
import type { JobRecord, Manifest } from './manifest.ts';

export type { CompressAlgorithm, ImageFormat } from './job-names.ts';

export type JobSpec =
  | { kind: 'image'; name: string; format: ImageFormat; size: number | undefined }
  | { kind: 'compress'; name: string; algorithm: CompressAlgorithm };

/** Types the image jobs decode (libvips in sharp's prebuilt binaries). SVG is left out on purpose: rendering it is a larger attack surface. */
export const IMAGE_INPUT_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/tiff'];

/** Types whose bytes are already compressed: compressing them again wastes CPU for ~0% gain. */
const ALREADY_COMPRESSED = [
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/heic', 'image/heif', 'image/jxl', 'image/apng',
  'audio/*', 'video/*', 'application/pdf',
  'application/zip', 'application/gzip', 'application/x-7z-compressed', 'application/zstd', 'application/x-bzip2', 'application/x-xz',
];
const UNCOMPRESSED_AUDIO = ['audio/wav'];

export function jobCatalogue(config: Readonly<Config>): ReadonlyMap<string, JobSpec> {
  const out = new Map<string, JobSpec>();
  for (const p of config.jobs.presets) out.set(p.name, { kind: 'image', name: p.name, format: p.format, size: p.size });
  for (const f of CONVERT_JOBS) out.set(f, { kind: 'image', name: f, format: f, size: undefined });
  for (const a of COMPRESS_JOBS) out.set(a, { kind: 'compress', name: a, algorithm: a });
  return out;
}

const processSchema = z
  .string()
  .max(512)
  .regex(/^[a-z0-9, +-]*$/, 'job names separated by commas')
  .transform((s) => [...new Set(s.split(/[,+ ]/).map((x) => x.trim()).filter(Boolean))]);

/**
 * A `process` field or query value → the requested job names. `undefined`
 * (absent) means the per-type defaults; `none` or an empty value means no jobs.
 * Unknown names are refused with UNKNOWN_JOB before any byte is stored.
 */
export function parseProcess(raw: string | undefined, config: Readonly<Config>): readonly string[] | undefined {
  if (raw === undefined) return undefined;
  const parsed = processSchema.safeParse(raw);
  if (!parsed.success) throw new SluiceError('UNKNOWN_JOB', { message: `Invalid process parameter: ${parsed.error.issues[0]?.message ?? 'invalid'}` });
  const names = parsed.data.filter((n) => n !== 'none');
  const catalogue = jobCatalogue(config);
  const unknown = names.filter((n) => !catalogue.has(n));
  if (unknown.length > 0) {
    throw new SluiceError('UNKNOWN_JOB', { message: `Unknown job ${unknown.map((u) => JSON.stringify(u)).join(', ')}`, details: { unknown, known: [...catalogue.keys()] } });
  }
  return names;
}

/** The job records a new file starts with, or undefined when it gets none. */
export function initialJobs(
  type: FileType,
  requested: readonly string[] | undefined,
  config: Readonly<Config>,
  now = new Date(),
): Record<string, JobRecord> | undefined {
  if (config.jobs.poolSize === 0) return undefined;
  const explicit = requested !== undefined;
  const names = requested ?? config.jobs.defaults.find((r) => isAllowed(type.mime, [r.type]))?.jobs ?? [];
  if (names.length === 0) return undefined;
  const catalogue = jobCatalogue(config);
  const updatedAt = now.toISOString();
  const jobs: Record<string, JobRecord> = {};
  for (const name of names) {
    const spec = catalogue.get(name);
    if (!spec) continue; // config validated defaults; requests were parsed
    const reason = skipReason(spec, type.mime, explicit);
    jobs[name] = reason ? { state: 'skipped', attempts: 0, updatedAt, reason } : { state: 'pending', attempts: 0, updatedAt };
  }
  return jobs;
}

function skipReason(spec: JobSpec, mime: string, explicit: boolean): string | undefined {
  if (spec.kind === 'image') return IMAGE_INPUT_TYPES.includes(mime) ? undefined : `not an image type the image jobs decode (${mime})`;
  if (!explicit && isAllowed(mime, ALREADY_COMPRESSED) && !UNCOMPRESSED_AUDIO.includes(mime)) return `${mime} is already compressed (ask for it explicitly to compress anyway)`;
  return undefined;
}

/** True while a job of the file has not ended. */
export function hasUnfinishedJobs(m: Manifest): boolean {
  return Object.values(m.jobs ?? {}).some((j) => j.state === 'pending' || j.state === 'running');
}

/** Whether the file needs a durable marker at commit: unfinished jobs, or a webhook to deliver. */
export function needsMarker(m: Manifest, config: Readonly<Config>): boolean {
  return hasUnfinishedJobs(m) || config.jobs.webhook !== undefined;
}

export function markerRoot(prefix: string): string {
  return `${systemPrefix(prefix)}jobs/`;
}

export function markerKey(prefix: string, tenant: string, id: string): string {
  tenantPrefix(prefix, tenant); // validates the tenant
  return `${markerRoot(prefix)}${tenant}/${id}`;
}

/** tenant and id from a marker key, or undefined for a key that is not one. */
export function parseMarkerKey(prefix: string, key: string): { tenant: string; id: string } | undefined {
  const root = markerRoot(prefix);
  if (!key.startsWith(root)) return undefined;
  const [tenant, id, ...rest] = key.slice(root.length).split('/');
  if (!tenant || !id || rest.length > 0) return undefined;
  return { tenant, id };
}

export async function writeMarker(storage: Storage, prefix: string, m: Manifest): Promise<void> {
  const body = Buffer.from(JSON.stringify({ tenant: m.tenant, id: m.id, createdAt: m.createdAt }) + '\n');
  await storage.put(markerKey(prefix, m.tenant, m.id), bytesOf(body), { contentType: 'application/json' });
}

export async function deleteMarker(storage: Storage, prefix: string, tenant: string, id: string): Promise<void> {
  await storage.delete(markerKey(prefix, tenant, id));
}

/** What commitFiles hands committed files to; the job service implements it. */
export interface JobQueue {
  enqueue(files: readonly Manifest[]): void;
}
