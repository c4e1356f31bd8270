// Uploads one local file with PUT /v1/files/:name?path=<remote>, end-to-end verified:
//
// - up to bufferMax bytes: read once into memory, hashed, sent with
//   Content-Digest; the server verifies before it commits (422 otherwise).
// - up to hashFirstMax: hashed in a first pass (the second read is served by
//   the page cache), then streamed with Content-Digest, as above.
// - larger: streamed once with the sha256 computed in the same pass, then
//   compared with the server's answer; a mismatch deletes the file and retries.
//
// After a 201 the file is stat'ed again: if it changed while being read, the
// stored copy may be torn, so it is deleted and the file reported as failed.
//
// Memory bound: concurrency × bufferMax for whole-read files plus
// 3 × READ_CHUNK per streamed upload (see local-file.ts).

import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type ApiClient, CliError, errorFrom, netError, withRetries, type RetryPolicy } from './client.ts';
import { type BufferPool, declaredType, fileChunks, FileShrank, readWhole, sha256File } from './local-file.ts';
import { pathProblem } from '../core/paths.ts';
import { findCommitted } from './reconcile.ts';
import type { Journal } from './state.ts';
import type { LocalFile } from './walk.ts';

export interface UploadOptions {
  process: string | undefined;
  retry: RetryPolicy;
  bufferMax: number;
  hashFirstMax: number;
  force: boolean;
  checksum: boolean;
}

export interface UploadContext {
  client: ApiClient;
  journal: Journal | undefined;
  opts: UploadOptions;
  /** Buffers of bufferMax bytes for whole-read files, one per worker. */
  pool: BufferPool;
  signal: AbortSignal;
  /** Bytes read and sent (negative when an attempt is rolled back for a retry). */
  onBytes(n: number): void;
  onRetry(file: LocalFile, err: CliError, attempt: number, waitMs: number): void;
}

export interface FileResult {
  [extra: string]: unknown;
  type: 'file';
  path: string;
  status: 'ok' | 'skipped' | 'failed';
  size: number;
  id?: string;
  sha256?: string;
  attempts?: number;
  durationMs?: number;
  /** Why a file was skipped (state, symlink, excluded, special). */
  reason?: string;
  error?: { code: string; message: string };
}

export interface ServerFile {
  id: string;
  name: string;
  size: number;
  sha256: string;
  createdAt: string;
}

/**
 * The result of a file that needs no request: skipped (the journal has it
 * done, unchanged) or failed (a path the server would refuse). Undefined: upload it.
 */
export async function settledWithoutRequest(ctx: Pick<UploadContext, 'client' | 'journal' | 'opts' | 'signal'>, file: LocalFile): Promise<FileResult | undefined> {
  const base = { type: 'file' as const, path: file.display, size: file.size };
  const prior = ctx.journal?.lookup(ctx.client.server, file.abs)?.done;
  if (!ctx.opts.force && prior && prior.size === file.size && prior.mtimeMs === file.mtimeMs) {
    // An unreadable file is not "the same": it goes on to the upload, which reports why.
    const same = !ctx.opts.checksum || (await sha256File(file.abs, ctx.signal).then((h) => h.sha256, () => undefined)) === prior.sha256;
    if (same) return { ...base, status: 'skipped', reason: 'state', ...(prior.id ? { id: prior.id } : {}), ...(prior.sha256 ? { sha256: prior.sha256 } : {}) };
  }
  // The server would refuse it too (INVALID_PATH): say so without a request.
  const bad = pathProblem(file.remote);
  if (bad) return { ...base, status: 'failed', error: { code: 'INVALID_PATH', message: `the path ${JSON.stringify(file.remote)} ${bad}` } };
  return undefined;
}

export function journalRecord(server: string, file: LocalFile) {
  return { server, path: file.abs, size: file.size, mtimeMs: file.mtimeMs };
}

/** One file on its own request; `checked`: settledWithoutRequest already ran. */
export async function uploadFile(ctx: UploadContext, file: LocalFile, checked = false): Promise<FileResult> {
  const started = performance.now();
  const server = ctx.client.server;
  const base = { type: 'file' as const, path: file.display, size: file.size };
  const rec = journalRecord(server, file);
  const settled = checked ? undefined : await settledWithoutRequest(ctx, file);
  if (settled) return settled;

  await ctx.journal?.begin(rec);
  let attempts = 0;
  try {
    const stored = await withRetries(
      ctx.opts.retry,
      ctx.signal,
      (n) => {
        attempts = n;
        return attempt(ctx, file);
      },
      (err, n, waitMs) => ctx.onRetry(file, err, n, waitMs),
    );
    await ctx.journal?.done({ ...rec, id: stored.id, sha256: stored.sha256 });
    return { ...base, status: 'ok', id: stored.id, sha256: stored.sha256, attempts, durationMs: Math.round(performance.now() - started) };
  } catch (err) {
    const e = netError(err, ctx.signal);
    const ce = e instanceof CliError ? e : localError(e);
    // The server refused (or we deleted what it stored): nothing committed, so no reconcile is needed next run.
    if (ce.settled) await ctx.journal?.clear(rec);
    return { ...base, status: 'failed', attempts, durationMs: Math.round(performance.now() - started), error: { code: ce.code, message: ce.message } };
  }
}

async function attempt(ctx: UploadContext, file: LocalFile): Promise<{ id: string; sha256: string }> {
  const { opts, signal } = ctx;
  const name = path.basename(file.abs);
  const headers: Record<string, string> = { 'content-type': declaredType(name), 'content-length': String(file.size) };
  let sent = 0;
  const onBytes = (n: number) => {
    sent += n;
    ctx.onBytes(n);
  };
  // Whole-read files: the buffer goes back to the pool only once the server has read all of it (a 201).
  let whole: { buf: Buffer; data: Buffer } | undefined;
  let body: Buffer | AsyncIterable<Buffer>;
  let sha256: string | undefined;
  const samePassHash = file.size > opts.hashFirstMax ? createHash('sha256') : undefined;
  try {
    if (file.size <= opts.bufferMax) {
      whole = await readWhole(file.abs, file.size, ctx.pool);
      body = whole.data;
      sha256 = createHash('sha256').update(whole.data).digest('hex');
    } else if (!samePassHash) {
      const h = await sha256File(file.abs, signal, file.size);
      if (h.size !== file.size) throw new FileShrank();
      sha256 = h.sha256;
      body = fileChunks(file.abs, file.size, { onBytes, signal });
    } else {
      body = fileChunks(file.abs, file.size, { hash: samePassHash, onBytes, signal });
    }
  } catch (err) {
    if (err instanceof FileShrank) throw fileChanged(true);
    throw err;
  }
  if (sha256) headers['content-digest'] = `sha-256=:${Buffer.from(sha256, 'hex').toString('base64')}:`;

  const attemptStarted = Date.now();
  const query = `?path=${encodeURIComponent(file.remote)}${opts.process ? `&process=${encodeURIComponent(opts.process)}` : ''}`;
  let stored: ServerFile;
  try {
    const res = await ctx.client.request({
      method: 'PUT',
      path: `/v1/files/${encodeURIComponent(name)}${query}`,
      headers,
      // undici sends async iterables chunk by chunk (its types list only streams).
      body: body as Buffer,
      signal,
    });
    if (res.statusCode !== 201) {
      const err = await errorFrom(res);
      // A digest mismatch is a transfer fault (or a file edited between passes): worth another go.
      throw err.code === 'CHECKSUM_MISMATCH' ? err.with({ retryable: true }) : err;
    }
    const answer = (await res.body.json()) as { files?: ServerFile[] };
    const f = answer.files?.[0];
    if (!f || typeof f.id !== 'string') throw new CliError('BAD_RESPONSE', 'the server answered 201 without a file');
    stored = f;
  } catch (err) {
    if (!whole) ctx.onBytes(-sent);
    if (err instanceof FileShrank || (err as { code?: string } | null)?.code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') throw fileChanged(true);
    // Connection lost with the whole body sent (a whole-read body may have been): the server may
    // have committed it. Look before retrying, or the retry stores the file twice.
    const e = netError(err, signal);
    if (e instanceof CliError && e.code === 'NETWORK_ERROR' && (whole !== undefined || sent === file.size)) {
      const known = sha256 ?? samePassHash!.copy().digest('hex');
      const id = await findCommitted(ctx.client, { name, path: file.remote, size: file.size, sha256: known }, attemptStarted, signal).catch(() => undefined);
      if (id !== undefined) {
        ctx.onBytes(file.size);
        return { id, sha256: known };
      }
    }
    throw e;
  }
  if (whole) {
    ctx.pool.give(whole.buf);
    ctx.onBytes(file.size);
  }

  const local = sha256 ?? samePassHash!.digest('hex');
  if (stored.sha256 !== local || stored.size !== file.size) {
    const deleted = await deleteQuietly(ctx, stored.id);
    ctx.onBytes(-file.size);
    throw new CliError('CHECKSUM_MISMATCH', `the server stored sha256 ${stored.sha256}, the file has ${local}`, { retryable: deleted, settled: deleted });
  }
  const after = await stat(file.abs);
  if (after.size !== file.size || Math.trunc(after.mtimeMs) !== file.mtimeMs) {
    const deleted = await deleteQuietly(ctx, stored.id);
    ctx.onBytes(-file.size);
    throw fileChanged(deleted);
  }
  return { id: stored.id, sha256: local };
}

/** A local failure (the file vanished, EACCES, ...): the request body never completed, so nothing was committed. */
export function localError(e: unknown): CliError {
  const errno = e as NodeJS.ErrnoException;
  const code = typeof errno?.code === 'string' && typeof errno.syscall === 'string' ? errno.code : 'CLIENT_ERROR';
  return new CliError(code, e instanceof Error ? e.message : String(e), { settled: code !== 'CLIENT_ERROR', cause: e });
}

export function fileChanged(settled: boolean): CliError {
  return new CliError('FILE_CHANGED', 'the file changed while it was being uploaded; run again to upload the new version', { settled });
}

export async function deleteQuietly(ctx: Pick<UploadContext, 'client'>, id: string): Promise<boolean> {
  try {
    const res = await ctx.client.request({ method: 'DELETE', path: `/v1/files/${encodeURIComponent(id)}` });
    await res.body.dump();
    return res.statusCode === 204 || res.statusCode === 404;
  } catch {
    return false;
  }
}
