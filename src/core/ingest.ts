// One upload: the client's bytes flow through
//   idle timeout → size limit → type sniff → sha256 + count → storage
// composed with stream.pipeline, so backpressure reaches the socket and any
// failure (limit, type, checksum, storage, disconnect, shutdown) aborts the
// storage write, which leaves nothing behind. The manifest is written last by
// `commitFiles`: until then the original is invisible to every reader.

import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { SluiceError, isSluiceError } from '../errors.ts';
import type { Storage } from '../storage/storage.ts';
import { fileKeys, newFileId } from './keys.ts';
import { MANIFEST_VERSION, type Manifest } from './manifest.ts';
import { byteLimit } from './stages/byte-limit.ts';
import { digest } from './stages/digest.ts';
import { idleTimeout } from './stages/idle-timeout.ts';
import { sniffType } from './stages/sniff.ts';
import { beginCommit, commitKey, settleCommit } from './commits.ts';
import { writeManifest, deleteFileObjects } from './files.ts';
import { initialJobs, needsMarker, writeMarker, type JobQueue } from './jobs.ts';

/** The logging the core needs; Fastify's request logger and pino both fit. */
export type CoreLog = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;

export interface IngestDeps {
  config: Readonly<Config>;
  storage: Storage;
  log: CoreLog;
  /** Receives committed files for processing; absent: jobs wait for the next rescan. */
  jobs?: JobQueue | undefined;
}

export interface IngestInput {
  tenant: string;
  /** Already sanitised (see names.ts). */
  name: string;
  /** Relative path, already validated by parsePath (see paths.ts); defaults to name. */
  path?: string | undefined;
  source: AsyncIterable<Uint8Array>;
  declaredType?: string | undefined;
  expectedSha256?: Buffer | undefined;
  signal: AbortSignal;
  /** Jobs asked for (already validated by parseProcess); undefined: the per-type defaults. */
  process?: readonly string[] | undefined;
  /** The body's length when the request declared it (Content-Length); storage sizes its parts from it. */
  declaredSize?: number | undefined;
}

/** A stored original, not yet visible: `commitFiles` makes it so. */
export type StagedFile = Manifest;

export async function stageFile(deps: IngestDeps, input: IngestInput): Promise<StagedFile> {
  const { config, storage } = deps;
  const id = newFileId();
  const keys = fileKeys(config.keyPrefix, input.tenant, id);
  const sniff = sniffType({ allowed: config.allowedTypes, declared: input.declaredType });
  const sum = digest(input.expectedSha256);
  let stored = false;

  try {
    await pipeline(
      input.source,
      idleTimeout(config.timeouts.uploadIdleMs),
      byteLimit(config.limits.fileBytes),
      sniff.stage,
      sum.stage,
      async function toStorage(body: AsyncIterable<Uint8Array>) {
        // Pull the first chunk so the type is known before storage starts: S3
        // needs Content-Type when the (multipart) upload is created.
        const it = body[Symbol.asyncIterator]();
        try {
          const first = await it.next();
          await storage.put(keys.original, prepend(first, it), {
            contentType: sniff.type().mime,
            metadata: { 'sluice-id': id, 'sluice-tenant': input.tenant },
            signal: input.signal,
            sizeHint: input.declaredSize,
          });
          stored = true;
        } finally {
          // A put that fails before reading to the end leaves the stages suspended: end them (sniff.ts says why).
          it.return?.()?.catch(() => {});
        }
      },
      { signal: input.signal },
    );
  } catch (err) {
    // storage.put removes its own partial state; an error before put started leaves nothing.
    // But the pipeline can still fail after put succeeded (an abort landing at that moment):
    // then the stored original would be an orphan, so remove it.
    if (stored) {
      await storage.delete(keys.original).catch((delErr: unknown) => deps.log.error({ err: delErr, key: keys.original }, 'could not remove an original after a failed upload'));
    }
    throw normaliseIngestError(err, input.signal);
  }

  const { sha256, size } = sum.result();
  const declared = input.declaredType?.trim();
  const jobs = initialJobs(sniff.type(), input.process, config);
  return {
    version: MANIFEST_VERSION,
    id,
    tenant: input.tenant,
    name: input.name,
    path: input.path ?? input.name,
    size,
    sha256,
    type: sniff.type(),
    ...(declared ? { declaredType: declared.slice(0, 255) } : {}),
    createdAt: new Date().toISOString(),
    original: { key: keys.original },
    ...(jobs ? { jobs } : {}),
  };
}

/**
 * Make staged files visible by writing their manifests. All or nothing: when
 * any manifest fails, the ones written and every staged original are removed;
 * when the process dies half-way, the request's commit record (commits.ts)
 * keeps every file of it hidden until the reaper removes them.
 * Job markers (the durable index of unfinished work) are written first, so a
 * crash after any manifest is written always leaves the record of its jobs.
 */
export async function commitFiles(deps: IngestDeps, staged: StagedFile[]): Promise<void> {
  try {
    await publishFiles(deps, staged);
  } catch (err) {
    await discardStaged(deps, staged);
    throw err;
  }
}

/**
 * commitFiles without the clean-up: on failure the originals stay where they
 * are, for a caller whose upload outlives the request (a finished tus upload
 * is kept resumable and its commit retried; finish.ts).
 */
export async function publishFiles(deps: IngestDeps, staged: StagedFile[]): Promise<void> {
  const { storage, config } = deps;
  const tenant = staged[0]?.tenant;
  // One manifest write is atomic by itself; several need the request's commit record around them.
  const commit = staged.length > 1 && tenant !== undefined ? await beginCommit(storage, config.keyPrefix, tenant, staged.map((m) => m.id)) : undefined;
  if (commit) for (const m of staged) m.commit = commit;
  for (const m of staged) {
    if (needsMarker(m, config)) await writeMarker(storage, config.keyPrefix, m);
  }
  // ifAbsent: a commit creates its file's manifest and never replaces one another writer made.
  for (const m of staged) await writeManifest(storage, config.keyPrefix, m, { ifAbsent: true });
  if (commit && tenant !== undefined) await settleCommit(storage, config.keyPrefix, tenant, commit);
  deps.jobs?.enqueue(staged);
}

/** Remove staged (or committed) files; failures are logged, never thrown, so the original error wins. */
export async function discardStaged(deps: IngestDeps, staged: readonly StagedFile[]): Promise<void> {
  for (const m of staged) {
    try {
      await deleteFileObjects(deps.storage, deps.config.keyPrefix, m.tenant, m.id);
    } catch (err) {
      deps.log.error({ err, fileId: m.id }, 'could not remove a staged file after a failed request');
    }
  }
  // The commit record goes last: while it exists, whatever could not be removed stays hidden (and the reaper retries).
  const commit = staged.find((m) => m.commit !== undefined);
  if (commit?.commit) {
    await deps.storage
      .delete(commitKey(deps.config.keyPrefix, commit.tenant, commit.commit))
      .catch((err: unknown) => deps.log.error({ err, commit: commit.commit }, 'could not remove the commit record of a failed request'));
  }
}

async function* prepend(
  first: IteratorResult<Uint8Array>,
  rest: AsyncIterator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (first.done) return;
  yield first.value;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

function normaliseIngestError(err: unknown, signal: AbortSignal): unknown {
  if (isSluiceError(err)) return err;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return isSluiceError(reason) ? reason : new SluiceError('CLIENT_ABORTED', { cause: err });
  }
  const code = (err as { code?: string } | null)?.code;
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ABORT_ERR') {
    return new SluiceError('CLIENT_ABORTED', { cause: err });
  }
  return err;
}
