// `sluice download`: each id's manifest, then its bytes into
// <dir>/<name>, verified against the manifest's sha256.
//
// Bytes land in a hidden part file (.<name>.<id>.part) that is renamed into
// place only after the sha256 matched, so <dir>/<name> is always complete.
// A part file left by an earlier run or a failed attempt is resumed with
// `Range: bytes=<size>-` and `If-Range: "<sha256>"` (the ETag): its bytes
// are hashed first, the rest appended. A mismatch at the end throws the part
// away and starts over (counted as a retry).

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { sanitizeFileName } from '../core/names.ts';
import { ApiClient, CliError, errorFrom, netError, withRetries, type RetryPolicy } from './client.ts';
import { EXIT, type Io } from './io.ts';
import { unreachable } from './preflight.ts';
import { sha256File } from './local-file.ts';
import { forEachBounded } from './pool.ts';
import { Progress } from './progress.ts';

export interface DownloadCommand {
  ids: string[];
  output: string;
  server: string;
  token: string | undefined;
  concurrency: number;
  retry: RetryPolicy;
  overwrite: boolean;
  json: boolean;
  quiet: boolean;
  progressIntervalMs: number;
}

interface Manifest {
  id: string;
  name: string;
  size: number;
  sha256: string;
}

export async function runDownload(cmd: DownloadCommand, io: Io): Promise<number> {
  const progress = new Progress({ command: 'download', json: cmd.json, quiet: cmd.quiet, intervalMs: cmd.progressIntervalMs, stdout: io.stdout, stderr: io.stderr });
  const client = new ApiClient({ server: cmd.server, token: cmd.token, connections: cmd.concurrency });
  const down = await unreachable(client, cmd.retry, io, 'download');
  if (down !== undefined) return down;
  const ids = [...new Set(cmd.ids)];
  try {
    await mkdir(cmd.output, { recursive: true });
    // Sizes are not known before each manifest is read; the bar counts files until then.
    progress.plan(ids.length, 0);
    await forEachBounded(
      ids,
      cmd.concurrency,
      async (id) => {
        progress.start(id);
        const started = performance.now();
        let attempts = 0;
        let m: Manifest | undefined;
        try {
          const r = await withRetries(
            cmd.retry,
            io.signal,
            async (n) => {
              attempts = n;
              m ??= await client.json<Manifest>({ method: 'GET', path: `/v1/files/${encodeURIComponent(id)}`, signal: io.signal });
              return fetchInto(client, m, cmd, io.signal, (b) => progress.bytes(b));
            },
            (err, n, waitMs) => progress.note(`sluice: ${id}: ${err.code} (${err.message}); retry ${n} in ${Math.round(waitMs)} ms`),
          );
          const base = { type: 'file' as const, path: r.path, id, size: m!.size, sha256: m!.sha256, attempts, durationMs: Math.round(performance.now() - started) };
          progress.finish(r.skipped ? { ...base, status: 'skipped', reason: 'present' } : { ...base, status: 'ok', ...(r.resumedAt > 0 ? { resumedAt: r.resumedAt } : {}) });
        } catch (err) {
          const e = netError(err, io.signal);
          const ce = e instanceof CliError ? e : new CliError('CLIENT_ERROR', e instanceof Error ? e.message : String(e));
          if (io.signal.aborted && ce.code === 'INTERRUPTED') return;
          progress.finish({ type: 'file', path: m ? path.join(cmd.output, safeName(m)) : id, id, status: 'failed', size: m?.size ?? 0, attempts, error: { code: ce.code, message: ce.message } });
        }
      },
      io.signal,
    );
  } finally {
    await client.close();
  }
  const summary = progress.end(io.signal.aborted);
  if (io.signal.aborted) return EXIT.INTERRUPTED;
  return summary.failed > 0 ? EXIT.FAILED : EXIT.OK;
}

function safeName(m: Manifest): string {
  // The server already sanitises; do it again, since the name becomes a local path.
  return sanitizeFileName(m.name);
}

async function fetchInto(
  client: ApiClient,
  m: Manifest,
  cmd: DownloadCommand,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<{ path: string; skipped: boolean; resumedAt: number }> {
  const target = path.join(cmd.output, safeName(m));
  const part = path.join(cmd.output, `.${safeName(m)}.${m.id}.part`);

  const existing = await stat(target).catch(() => null);
  if (existing) {
    if (existing.size === m.size && (await sha256File(target, signal)).sha256 === m.sha256) {
      return { path: target, skipped: true, resumedAt: 0 };
    }
    if (!cmd.overwrite) throw new CliError('FILE_EXISTS', `${target} exists with different content (use --overwrite)`);
  }

  // Resume: hash what the part file holds (a part longer than the file is junk).
  const partSize = (await stat(part).catch(() => null))?.size ?? 0;
  let offset = 0;
  let hash = createHash('sha256');
  if (partSize > 0 && partSize <= m.size) {
    const h = createHash('sha256');
    if ((await hashInto(part, partSize, h)) === partSize) {
      offset = partSize;
      hash = h;
    }
  }
  if (offset === 0) await writeFile(part, ''); // fresh (or junk replaced); also the whole of an empty file
  const resumedAt = offset;

  if (offset < m.size) {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-`, 'if-range': `"${m.sha256}"` } : {};
    const res = await client.request({ method: 'GET', path: `/v1/files/${encodeURIComponent(m.id)}/content`, headers, signal });
    if (res.statusCode !== 200 && res.statusCode !== 206) throw await errorFrom(res);
    let h = hash;
    if (res.statusCode === 200 && offset > 0) {
      // The server sent the whole file (the ETag changed or Range was ignored): start over.
      offset = 0;
      h = createHash('sha256');
    }
    await pipeline(
      res.body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          h.update(chunk);
          onBytes(chunk.byteLength);
          yield chunk;
        }
      },
      createWriteStream(part, { flags: offset > 0 ? 'a' : 'w', flush: true }),
      { signal },
    ).catch((err: unknown) => {
      throw netError(err, signal);
    });
    return finishPart(part, target, m, h.digest('hex'), resumedAt);
  }
  return finishPart(part, target, m, hash.digest('hex'), resumedAt);
}

async function finishPart(part: string, target: string, m: Manifest, sha256: string, resumedAt: number) {
  const size = (await stat(part).catch(() => null))?.size ?? 0;
  if (sha256 !== m.sha256 || size !== m.size) {
    await unlink(part).catch(() => {});
    // Retryable: the part is gone, so the next attempt downloads from byte 0.
    throw new CliError('CHECKSUM_MISMATCH', `downloaded bytes have sha256 ${sha256}, the server's manifest says ${m.sha256}`, { retryable: true });
  }
  await rename(part, target);
  return { path: target, skipped: false, resumedAt };
}

/** Hash the first `n` bytes of a file into `hash`; returns how many were read. */
async function hashInto(file: string, n: number, hash: ReturnType<typeof createHash>): Promise<number> {
  let read = 0;
  for await (const chunk of createReadStream(file, { start: 0, end: n - 1 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    read += chunk.byteLength;
  }
  return read;
}
