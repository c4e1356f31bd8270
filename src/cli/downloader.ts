// `sluice download`: the manifests of the ids asked for (and of every file
// under --prefix), then their bytes into <dir>/<path>, the tree they were
// uploaded as, verified against the manifest's sha256.
//
// Nothing is replaced silently: before any byte moves, every file's target is
// planned; two files of one run landing on the same target both fail with
// PATH_COLLISION (naming each other), and a target that exists with other
// bytes fails with FILE_EXISTS unless --overwrite. The final step links the
// finished part file into place (link(2) fails when the target appeared
// meanwhile), so even a file created behind our back is not overwritten.
//
// Bytes land in a hidden part file (.<name>.<id>.part, beside the target)
// that is moved into place only after the sha256 matched, so the target is
// always complete. A part file left by an earlier run or a failed attempt is
// resumed with `Range: bytes=<size>-` and `If-Range: "<sha256>"` (the ETag):
// its bytes are hashed first, the rest appended. A mismatch at the end throws
// the part away and starts over (counted as a retry).

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathProblem } from '../core/paths.ts';
import { ApiClient, CliError, errorFrom, netError, withRetries, type RetryPolicy } from './client.ts';
import { EXIT, type Io } from './io.ts';
import { unreachable } from './preflight.ts';
import { sha256File } from './local-file.ts';
import { forEachBounded } from './pool.ts';
import { Progress } from './progress.ts';

export interface DownloadCommand {
  ids: string[];
  /** Also download every file whose path starts with this. */
  prefix: string | undefined;
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
  /** Absent for files uploaded before paths existed: their name is their path. */
  path?: string;
  size: number;
  sha256: string;
}

/** One file of the run: its manifest and target, or why it cannot be downloaded. */
interface Planned {
  id: string;
  m?: Manifest;
  target?: string;
  attempts: number;
  error?: CliError;
}

const PAGE = 1000;

export async function runDownload(cmd: DownloadCommand, io: Io): Promise<number> {
  const progress = new Progress({ command: 'download', json: cmd.json, quiet: cmd.quiet, intervalMs: cmd.progressIntervalMs, stdout: io.stdout, stderr: io.stderr });
  const client = new ApiClient({ server: cmd.server, token: cmd.token, connections: cmd.concurrency });
  const down = await unreachable(client, cmd.retry, io, 'download');
  if (down !== undefined) return down;
  const note = (id: string) => (err: CliError, n: number, waitMs: number) => progress.note(`sluice: ${id}: ${err.code} (${err.message}); retry ${n} in ${Math.round(waitMs)} ms`);
  try {
    const output = path.resolve(cmd.output);
    await mkdir(output, { recursive: true });
    const planned = await resolveManifests(client, cmd, io.signal, note);
    if (io.signal.aborted) return EXIT.INTERRUPTED;
    planTargets(planned, output);
    progress.plan(planned.length, planned.reduce((n, p) => n + (p.m?.size ?? 0), 0));
    await forEachBounded(
      planned,
      cmd.concurrency,
      async (p) => {
        const shown = p.target ?? p.id;
        if (p.error || !p.m || !p.target) {
          progress.finish({ type: 'file', path: shown, id: p.id, status: 'failed', size: p.m?.size ?? 0, attempts: p.attempts, error: codeOf(p.error) });
          return;
        }
        const { m, target } = p;
        progress.start(shown);
        const started = performance.now();
        try {
          const r = await withRetries(
            cmd.retry,
            io.signal,
            (n) => {
              p.attempts = n;
              return fetchInto(client, m, target, cmd.overwrite, io.signal, (b) => progress.bytes(b));
            },
            note(p.id),
          );
          const base = { type: 'file' as const, path: target, id: p.id, size: m.size, sha256: m.sha256, attempts: p.attempts, durationMs: Math.round(performance.now() - started) };
          progress.finish(r.skipped ? { ...base, status: 'skipped', reason: 'present' } : { ...base, status: 'ok', ...(r.resumedAt > 0 ? { resumedAt: r.resumedAt } : {}) });
        } catch (err) {
          const e = netError(err, io.signal);
          const ce = e instanceof CliError ? e : localError(e);
          if (io.signal.aborted && ce.code === 'INTERRUPTED') return;
          progress.finish({ type: 'file', path: target, id: p.id, status: 'failed', size: m.size, attempts: p.attempts, error: codeOf(ce) });
        }
      },
      io.signal,
    );
  } catch (err) {
    const e = netError(err, io.signal);
    if (!io.signal.aborted) {
      const ce = e instanceof CliError ? e : localError(e);
      io.stderr.write(`sluice download: ${ce.code}: ${ce.message}\n`);
      return EXIT.FAILED;
    }
  } finally {
    await client.close();
  }
  const summary = progress.end(io.signal.aborted);
  if (io.signal.aborted) return EXIT.INTERRUPTED;
  return summary.failed > 0 ? EXIT.FAILED : EXIT.OK;
}

function codeOf(e: CliError | undefined): { code: string; message: string } {
  return e ? { code: e.code, message: e.message } : { code: 'CLIENT_ERROR', message: 'no manifest' };
}

function localError(e: unknown): CliError {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return new CliError(typeof code === 'string' ? code : 'CLIENT_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
}

/** The manifests of the ids (deduplicated, in order), then of the files listed under the prefix. */
async function resolveManifests(
  client: ApiClient,
  cmd: DownloadCommand,
  signal: AbortSignal,
  note: (id: string) => (err: CliError, n: number, waitMs: number) => void,
): Promise<Planned[]> {
  const planned: Planned[] = [...new Set(cmd.ids)].map((id) => ({ id, attempts: 0 }));
  await forEachBounded(
    planned,
    cmd.concurrency,
    async (p) => {
      try {
        p.m = await withRetries(
          cmd.retry,
          signal,
          (n) => {
            p.attempts = n;
            return client.json<Manifest>({ method: 'GET', path: `/v1/files/${encodeURIComponent(p.id)}`, signal });
          },
          note(p.id),
        );
      } catch (err) {
        const e = netError(err, signal);
        p.error = e instanceof CliError ? e : localError(e);
      }
    },
    signal,
  );
  if (cmd.prefix !== undefined) {
    const seen = new Set(planned.map((p) => p.id));
    let cursor: string | undefined;
    do {
      const q = `limit=${PAGE}&prefix=${encodeURIComponent(cmd.prefix)}${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await withRetries(cmd.retry, signal, () => client.json<{ files: Manifest[]; nextCursor?: string }>({ method: 'GET', path: `/v1/files?${q}`, signal }), note(`--prefix ${cmd.prefix}`));
      for (const m of page.files) if (!seen.has(m.id)) planned.push({ id: m.id, m, attempts: 0 });
      cursor = page.nextCursor;
    } while (cursor !== undefined && !signal.aborted);
  }
  return planned;
}

/**
 * Each file's target, <output>/<path>; files whose path the server should
 * never have accepted fail with INVALID_PATH, and files of this run that share
 * a target all fail with PATH_COLLISION, naming the others: there is no right
 * winner to pick, and no file is replaced silently.
 */
function planTargets(planned: Planned[], output: string): void {
  const byTarget = new Map<string, Planned[]>();
  for (const p of planned) {
    if (!p.m) continue;
    const rel = (p.m.path ?? p.m.name).normalize('NFC');
    const bad = pathProblem(rel);
    const target = path.join(output, ...rel.split('/'));
    if (bad || path.relative(output, target).startsWith('..')) {
      p.error = new CliError('INVALID_PATH', `the server's path ${JSON.stringify(rel)} for ${p.id} ${bad ?? 'leaves the output directory'}`);
      continue;
    }
    p.target = target;
    byTarget.set(target, [...(byTarget.get(target) ?? []), p]);
  }
  for (const [target, same] of byTarget) {
    if (same.length < 2) continue;
    for (const p of same) {
      const others = same.filter((o) => o !== p).map((o) => `${o.id} (${o.m!.path ?? o.m!.name})`);
      p.error = new CliError('PATH_COLLISION', `${target}: ${p.id} (${p.m!.path ?? p.m!.name}) and ${others.join(', ')} would download to the same file; download them into separate directories`);
    }
  }
}

async function fetchInto(
  client: ApiClient,
  m: Manifest,
  target: string,
  overwrite: boolean,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<{ path: string; skipped: boolean; resumedAt: number }> {
  const dir = path.dirname(target);
  await mkdir(dir, { recursive: true });
  const part = path.join(dir, `.${path.basename(target)}.${m.id}.part`);

  if (await samePresent(target, m, overwrite, signal)) return { path: target, skipped: true, resumedAt: 0 };

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
    return finishPart(part, target, m, h.digest('hex'), resumedAt, overwrite, signal);
  }
  return finishPart(part, target, m, hash.digest('hex'), resumedAt, overwrite, signal);
}

/** True when the target already holds the file; throws FILE_EXISTS when it holds something else (unless overwriting). */
async function samePresent(target: string, m: Manifest, overwrite: boolean, signal: AbortSignal): Promise<boolean> {
  const existing = await stat(target).catch(() => null);
  if (!existing) return false;
  if (existing.isFile() && existing.size === m.size && (await sha256File(target, signal)).sha256 === m.sha256) return true;
  if (!overwrite || !existing.isFile()) {
    throw new CliError('FILE_EXISTS', `${target} exists with other content than ${m.id} (${m.path ?? m.name}); not replacing it${existing.isFile() ? ' (use --overwrite)' : ''}`);
  }
  return false;
}

async function finishPart(part: string, target: string, m: Manifest, sha256: string, resumedAt: number, overwrite: boolean, signal: AbortSignal) {
  const size = (await stat(part).catch(() => null))?.size ?? 0;
  if (sha256 !== m.sha256 || size !== m.size) {
    await unlink(part).catch(() => {});
    // Retryable: the part is gone, so the next attempt downloads from byte 0.
    throw new CliError('CHECKSUM_MISMATCH', `downloaded bytes have sha256 ${sha256}, the server's manifest says ${m.sha256}`, { retryable: true });
  }
  if (overwrite) {
    await rename(part, target);
    return { path: target, skipped: false, resumedAt };
  }
  // link(2) refuses an existing target, where rename(2) would replace it.
  try {
    await link(part, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      // Appeared while we downloaded (or the file system folds case): same bytes are fine.
      try {
        if (await samePresent(target, m, false, signal)) return { path: target, skipped: true, resumedAt };
      } finally {
        await unlink(part).catch(() => {});
      }
    }
    // File systems without hard links: the pre-check in samePresent is the guard.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
    await rename(part, target);
    return { path: target, skipped: false, resumedAt };
  }
  await unlink(part);
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
