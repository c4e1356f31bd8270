// `sluice upload`: ask the server its limits, walk, reconcile an interrupted
// run, upload with bounded concurrency (small files several per request,
// batch-uploader.ts), report. Resolves to the process exit code.

import path from 'node:path';
import { ApiClient, type RetryPolicy } from './client.ts';
import { BufferPool } from './local-file.ts';
import { forEachBounded } from './pool.ts';
import { Progress } from './progress.ts';
import { reconcile } from './reconcile.ts';
import { Journal } from './state.ts';
import { type FileResult, settledWithoutRequest, type UploadContext, uploadFile, type UploadOptions } from './uploader.ts';
import { type LocalFile, walk, type WalkOptions } from './walk.ts';
import { type BatchLimits, planBatches, uploadBatch } from './batch-uploader.ts';
import { EXIT, type Io } from './io.ts';
import { unreachable } from './preflight.ts';

export interface UploadCommand extends WalkOptions, Omit<UploadOptions, 'retry'> {
  paths: string[];
  server: string;
  token: string | undefined;
  concurrency: number;
  /** The user chose --concurrency; otherwise the server's GET /v1/limits suggests it. */
  concurrencyGiven: boolean;
  /** Files up to this size go several per request (0: never). */
  batchMax: number;
  /** Body bytes per batch request, at most. */
  batchBytes: number;
  retry: RetryPolicy;
  /** Path of the state journal; undefined disables resuming. */
  state: string | undefined;
  json: boolean;
  quiet: boolean;
  progressIntervalMs: number;
}

/** Bounds on the concurrency taken from the server's suggestion. */
const MIN_AUTO_CONCURRENCY = 2;
const MAX_AUTO_CONCURRENCY = 16;

interface ServerLimits {
  fileBytes: number;
  requestBytes: number;
  filesPerRequest: number;
  uploadConcurrency: number;
}

/** GET /v1/limits; undefined from a server that predates it (or any trouble): the CLI's own defaults apply. */
async function serverLimits(client: ApiClient, signal: AbortSignal): Promise<ServerLimits | undefined> {
  try {
    const l = await client.json<Partial<ServerLimits>>({ method: 'GET', path: '/v1/limits', signal });
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
    if (ok(l.fileBytes) && ok(l.requestBytes) && ok(l.filesPerRequest) && ok(l.uploadConcurrency)) return l as ServerLimits;
  } catch {
    // not there: defaults
  }
  return undefined;
}

export async function runUpload(cmd: UploadCommand, io: Io): Promise<number> {
  const progress = new Progress({ command: 'upload', json: cmd.json, quiet: cmd.quiet, intervalMs: cmd.progressIntervalMs, stdout: io.stdout, stderr: io.stderr });
  const probe = new ApiClient({ server: cmd.server, token: cmd.token, connections: 1 });
  const down = await unreachable(probe, cmd.retry, io, 'upload');
  if (down !== undefined) return down;
  const limits = await serverLimits(probe, io.signal);
  await probe.close();
  const concurrency = cmd.concurrencyGiven || !limits ? cmd.concurrency : Math.min(MAX_AUTO_CONCURRENCY, Math.max(MIN_AUTO_CONCURRENCY, limits.uploadConcurrency));
  // Keep-alive: one connection per worker, reused by every request it sends.
  const client = new ApiClient({ server: cmd.server, token: cmd.token, connections: concurrency });
  const batchBytes = Math.min(cmd.batchBytes, limits?.requestBytes ?? cmd.batchBytes);
  const batching: BatchLimits = {
    // Old servers without /v1/limits still take several files, but their limit is unknown: stay single.
    maxFiles: limits ? limits.filesPerRequest : 1,
    maxBytes: batchBytes,
    // A file over the server's per-file limit goes alone, to get its own FILE_TOO_LARGE at once.
    smallMax: Math.min(cmd.batchMax, cmd.bufferMax, limits?.fileBytes ?? Infinity, Math.max(0, batchBytes - 4096)),
  };
  let journal: Journal | undefined;
  try {
    journal = cmd.state ? await Journal.open(cmd.state) : undefined;
  } catch (err) {
    await client.close();
    const e = err as { code?: string; message?: string };
    io.stderr.write(`sluice upload: ${e.code ?? 'STATE_ERROR'}: ${e.message ?? String(err)}\n`);
    return EXIT.FAILED;
  }
  const pool = new BufferPool(cmd.bufferMax, concurrency);
  const batchPool = new BufferPool(batching.maxBytes, concurrency);
  try {
    const tree = await walk(cmd.paths, cmd);
    // Never upload the journal, its lock or its compaction temp (they change while we run), e.g. for `sluice upload .`.
    if (cmd.state) {
      const own = path.resolve(cmd.state);
      tree.files = tree.files.filter((f) => f.abs !== own && f.abs !== `${own}.lock` && !f.abs.startsWith(`${own}.tmp-`));
    }
    const total = tree.files.reduce((n, f) => n + f.size, 0);
    progress.plan(tree.files.length + tree.problems.length, total);
    for (const p of tree.problems) progress.finish({ type: 'file', path: p.display, status: 'failed', size: 0, error: { code: p.code, message: p.message } });
    if (cmd.json) for (const s of tree.skipped) io.stdout.write(JSON.stringify({ type: 'file', path: s.display, status: 'skipped', size: 0, reason: s.reason }) + '\n');

    if (journal && !cmd.force) {
      const found = await reconcile(client, journal, tree.files, io.signal);
      if (found > 0) progress.note(`sluice: ${found} file(s) of an interrupted run were already on the server; not uploading them again`);
    }

    const ctx: UploadContext = {
      client,
      journal,
      opts: cmd,
      pool,
      signal: io.signal,
      onBytes: (n) => progress.bytes(n),
      onRetry: (f, err, n, waitMs) => progress.note(`sluice: ${f.display}: ${err.code} (${err.message}); retry ${n} in ${Math.round(waitMs)} ms`),
    };
    const finish = (result: FileResult) => {
      // An upload cut short by Ctrl-C is neither done nor failed: the next run picks it up.
      if (io.signal.aborted && result.error?.code === 'INTERRUPTED') return;
      progress.finish(result);
    };
    // Skipped and locally refused files first, so batches hold only files to send.
    const toSend: LocalFile[] = [];
    await forEachBounded(tree.files, concurrency, async (file) => {
      const settled = await settledWithoutRequest(ctx, file);
      if (settled) finish(settled);
      else toSend.push(file);
    }, io.signal);
    const order = new Map(tree.files.map((f, i) => [f, i]));
    toSend.sort((a, b) => order.get(a)! - order.get(b)!);

    await forEachBounded(
      planBatches(toSend, batching),
      concurrency,
      async (item) => {
        if (Array.isArray(item)) {
          for (const f of item) progress.start(f.display);
          await uploadBatch(ctx, item, batchPool, finish);
          return;
        }
        progress.start(item.display);
        finish(await uploadFile(ctx, item, true));
      },
      io.signal,
    );
  } finally {
    await journal?.close();
    await client.close();
  }
  const summary = progress.end(io.signal.aborted);
  if (io.signal.aborted) return EXIT.INTERRUPTED;
  return summary.failed > 0 ? EXIT.FAILED : EXIT.OK;
}
