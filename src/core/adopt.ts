// Adopting an original that reached storage by another road than stageFile
// (a finished resumable upload assembled in place by the tus store). Either
// its digest and type were computed while the bytes arrived (describeOriginal)
// or its bytes are read back once, streaming, through the same size limit,
// type sniff and sha256 stages as a plain upload (adoptStoredOriginal); either
// way the manifest says the same things, and `commitFiles` then makes it
// visible exactly like any other file.

import type { Config } from '../config.ts';
import { initialJobs } from './jobs.ts';
import { pipeline } from 'node:stream/promises';
import type { IngestDeps, StagedFile } from './ingest.ts';
import type { FileType } from './file-types.ts';
import { fileKeys } from './keys.ts';
import { MANIFEST_VERSION } from './manifest.ts';
import { byteLimit } from './stages/byte-limit.ts';
import { digest } from './stages/digest.ts';
import { sniffType } from './stages/sniff.ts';

export interface AdoptInput {
  tenant: string;
  /** The file id the original is already stored under (keys.ts layout). */
  id: string;
  /** Already sanitised (see names.ts). */
  name: string;
  declaredType?: string | undefined;
  /** Jobs the client asked for (tus metadata `process`); undefined: the defaults for the type. */
  process?: readonly string[] | undefined;
  signal: AbortSignal;
}

/**
 * Read `<prefix>/<tenant>/<id>/original` once and describe it. Throws the same
 * coded errors as stageFile (TYPE_NOT_ALLOWED, TYPE_MISMATCH, FILE_TOO_LARGE);
 * it never deletes anything: the caller decides what a refusal removes.
 */
export async function adoptStoredOriginal(deps: IngestDeps, input: AdoptInput): Promise<StagedFile> {
  const { config, storage } = deps;
  const { original } = fileKeys(config.keyPrefix, input.tenant, input.id);
  const sniff = sniffType({ allowed: config.allowedTypes, declared: input.declaredType });
  const sum = digest();
  const { body } = await storage.get(original, { signal: input.signal });
  await pipeline(body, byteLimit(config.limits.fileBytes), sniff.stage, sum.stage, drain, { signal: input.signal });
  return describeOriginal(config, input, { ...sum.result(), type: sniff.type() });
}

/** The staged file for an original whose sha256, size and admitted type are already known. */
export function describeOriginal(
  config: Readonly<Config>,
  input: Omit<AdoptInput, 'signal'>,
  known: { sha256: string; size: number; type: FileType },
): StagedFile {
  const keys = fileKeys(config.keyPrefix, input.tenant, input.id);
  // The same jobs a plain upload of this type gets, so how a file arrived does not change what is made of it.
  const jobs = initialJobs(known.type, input.process, config);
  const { sha256, size, type } = known;
  const declared = input.declaredType?.trim();
  return {
    version: MANIFEST_VERSION,
    id: input.id,
    tenant: input.tenant,
    name: input.name,
    size,
    sha256,
    type,
    ...(declared ? { declaredType: declared.slice(0, 255) } : {}),
    createdAt: new Date().toISOString(),
    original: { key: keys.original },
    ...(jobs ? { jobs } : {}),
  };
}

async function drain(source: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of source);
}
