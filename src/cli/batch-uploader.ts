// Small files go several to a request: one POST /v1/files multipart body
// with, per file, a `path` and a `sha256` field and then the file part. Per
// small file that saves a request, its TLS/HTTP overhead and the service's
// per-request work; the service still validates, sniffs and verifies each
// file on its own.
//
// The service commits a multipart request all or nothing, so a failed batch
// left nothing behind, and:
// - a retryable answer (network error, 408, 429, 502-504, a digest
//   mismatch) retries the batch, with the usual backoff;
// - any other refusal (one file of a disallowed type, say) says nothing about
//   which file was bad, so each file of the batch goes again on its own
//   request (uploader.ts): only the bad one fails, with its own code;
// - a connection lost after the whole body was sent may hide a commit: the
//   files are looked up (path, size, sha256) as for single uploads, found
//   ones are done, the rest retried.
// Journal: a "begin" per file before the request, a "done" per file after
// the 201, so resuming is as exact as for single uploads.
//
// Memory bound per batch in flight: one buffer of maxBytes (pooled).

import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { CliError, errorFrom, netError, withRetries } from './client.ts';
import { type BufferPool, declaredType, FileShrank, readInto } from './local-file.ts';
import { findCommittedMany } from './reconcile.ts';
import { deleteQuietly, type FileResult, fileChanged, journalRecord, localError, type ServerFile, type UploadContext, uploadFile } from './uploader.ts';
import type { LocalFile } from './walk.ts';

export interface BatchLimits {
  /** Files per request (the service's SLUICE_MAX_FILES). */
  maxFiles: number;
  /** Body bytes per request, multipart overhead included. */
  maxBytes: number;
  /** Files up to this size are batched. */
  smallMax: number;
}

/** Multipart overhead per file, bounded: boundary lines, headers, the path (≤ 1024 bytes, escaped) and sha256 fields. */
const PER_FILE_OVERHEAD = 4096;

/** Groups small files into batches in walk order; the rest are returned one per item. */
export function planBatches(files: readonly LocalFile[], limits: BatchLimits): (LocalFile | LocalFile[])[] {
  const out: (LocalFile | LocalFile[])[] = [];
  let batch: LocalFile[] = [];
  let bytes = 0;
  for (const f of files) {
    if (limits.smallMax <= 0 || f.size > limits.smallMax || limits.maxFiles < 2) {
      out.push(f);
      continue;
    }
    const cost = f.size + PER_FILE_OVERHEAD;
    if (batch.length > 0 && (batch.length >= limits.maxFiles || bytes + cost > limits.maxBytes)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(f);
    bytes += cost;
  }
  if (batch.length > 0) out.push(batch);
  return out.map((b) => (Array.isArray(b) && b.length === 1 ? b[0]! : b));
}

interface Read {
  file: LocalFile;
  data: Buffer;
  sha256: string;
}

/** Uploads one batch; `report` gets each file's result as soon as it is known. */
export async function uploadBatch(ctx: UploadContext, files: LocalFile[], pool: BufferPool, report: (r: FileResult) => void): Promise<void> {
  const started = performance.now();
  const server = ctx.client.server;
  for (const f of files) await ctx.journal?.begin(journalRecord(server, f));
  let pending = files;
  let attempts = 0;
  const buf = pool.take();
  try {
    await withRetries(
      ctx.opts.retry,
      ctx.signal,
      async (n) => {
        attempts = n;
        const { done, changed } = await attempt(ctx, pending, buf);
        for (const [file, stored] of done) {
          await ctx.journal?.done({ ...journalRecord(server, file), id: stored.id, sha256: stored.sha256 });
          report({ type: 'file', path: file.display, size: file.size, status: 'ok', id: stored.id, sha256: stored.sha256, attempts, durationMs: Math.round(performance.now() - started) });
        }
        for (const file of changed) {
          const e = fileChanged(true);
          await ctx.journal?.clear(journalRecord(server, file));
          report({ type: 'file', path: file.display, size: file.size, status: 'failed', attempts, durationMs: Math.round(performance.now() - started), error: { code: e.code, message: e.message } });
        }
        pending = pending.filter((f) => !done.has(f) && !changed.includes(f));
        // Found committed after a lost connection, but not all of them: send the rest again.
        if (pending.length > 0) throw new CliError('NETWORK_ERROR', 'connection lost; part of the batch was committed', { retryable: true });
      },
      (err, n, waitMs) => ctx.onRetry(pending[0]!, err, n, waitMs),
    );
  } catch (err) {
    const e = netError(err, ctx.signal);
    if (e instanceof CliError && e.code === 'INTERRUPTED') {
      for (const f of pending) report({ type: 'file', path: f.display, size: f.size, status: 'failed', attempts, error: { code: e.code, message: e.message } });
      return;
    }
    const ce = e instanceof CliError ? e : localError(e);
    if (ce.retryable) {
      // Out of retries: every file failed the same way; nothing of theirs was committed if the server said so.
      for (const f of pending) {
        if (ce.settled) await ctx.journal?.clear(journalRecord(server, f));
        report({ type: 'file', path: f.display, size: f.size, status: 'failed', attempts, durationMs: Math.round(performance.now() - started), error: { code: ce.code, message: ce.message } });
      }
      return;
    }
    // Refused (or a local problem with one file): find the culprit by sending each file on its own.
    for (const f of pending) report(await uploadFile(ctx, f, true));
  } finally {
    pool.give(buf);
  }
}

interface Outcome {
  done: Map<LocalFile, { id: string; sha256: string }>;
  /** Edited while read: their stored copies were deleted. */
  changed: LocalFile[];
}

async function attempt(ctx: UploadContext, files: LocalFile[], buf: Buffer): Promise<Outcome> {
  const { signal } = ctx;
  const reads: Read[] = [];
  let offset = 0;
  try {
    for (const file of files) {
      signal.throwIfAborted();
      const data = await readInto(file.abs, file.size, buf, offset);
      offset += file.size;
      reads.push({ file, data, sha256: createHash('sha256').update(data).digest('hex') });
    }
  } catch (err) {
    if (err instanceof FileShrank) throw fileChanged(true);
    throw err;
  }
  const boundary = `sluice-${createHash('sha256').update(String(performance.now())).digest('hex').slice(0, 24)}`;
  const chunks: Buffer[] = [];
  for (const r of reads) {
    const name = path.basename(r.file.abs);
    chunks.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\n${r.file.remote}\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n${r.sha256}\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''${encodeRfc5987(name)}\r\nContent-Type: ${declaredType(name)}\r\n\r\n`,
      ),
      r.data,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  const length = chunks.reduce((n, c) => n + c.byteLength, 0);
  const query = ctx.opts.process ? `?process=${encodeURIComponent(ctx.opts.process)}` : '';
  const attemptStarted = Date.now();
  let answer: { files?: ServerFile[] };
  try {
    const res = await ctx.client.request({
      method: 'POST',
      path: `/v1/files${query}`,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(length) },
      // undici sends async iterables chunk by chunk (its types list only streams).
      body: (async function* () {
        yield* chunks;
      })() as unknown as Buffer,
      signal,
    });
    if (res.statusCode !== 201) {
      const err = await errorFrom(res);
      throw err.code === 'CHECKSUM_MISMATCH' ? err.with({ retryable: true }) : err;
    }
    answer = (await res.body.json()) as { files?: ServerFile[] };
  } catch (err) {
    const e = netError(err, signal);
    if (e instanceof CliError && e.code === 'NETWORK_ERROR') {
      // The body went out in full before the connection broke (a buffer is sent at once): look before resending.
      const ids = await findCommittedMany(ctx.client, reads.map((r) => ({ path: r.file.remote, size: r.file.size, sha256: r.sha256 })), attemptStarted, signal).catch(() => []);
      const found = new Map<LocalFile, { id: string; sha256: string }>();
      reads.forEach((r, i) => {
        const id = ids[i];
        if (id !== undefined) found.set(r.file, { id, sha256: r.sha256 });
      });
      if (found.size > 0) {
        for (const r of reads) if (found.has(r.file)) ctx.onBytes(r.file.size);
        return { done: found, changed: [] };
      }
    }
    throw e;
  }
  const stored = answer.files ?? [];
  if (stored.length !== reads.length) throw new CliError('BAD_RESPONSE', `the server answered ${stored.length} files for a batch of ${reads.length}`);
  const done = new Map<LocalFile, { id: string; sha256: string }>();
  const changed: Read[] = [];
  for (let i = 0; i < reads.length; i++) {
    const r = reads[i]!;
    const s = stored[i]!;
    // The service verified each file against its sha256 field before committing; a different answer is a bug worth stopping for.
    if (s.sha256 !== r.sha256 || s.size !== r.file.size) throw new CliError('CHECKSUM_MISMATCH', `the server stored sha256 ${s.sha256} for ${r.file.display}, the file has ${r.sha256}`);
    const after = await stat(r.file.abs).catch(() => null);
    if (!after || after.size !== r.file.size || Math.trunc(after.mtimeMs) !== r.file.mtimeMs) changed.push(r);
    else done.set(r.file, { id: s.id, sha256: s.sha256 });
    ctx.onBytes(r.file.size);
  }
  // Edited while it was read: the stored copy may be torn. Remove it and report the file (the others stand).
  for (const r of changed) {
    await deleteQuietly(ctx, stored[reads.indexOf(r)]!.id);
    ctx.onBytes(-r.file.size);
  }
  return { done, changed: changed.map((r) => r.file) };
}

/** RFC 5987 value: the file name as UTF-8, percent-encoded where a header cannot carry it. */
function encodeRfc5987(s: string): string {
  return encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
