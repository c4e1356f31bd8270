// `sluice upload`: walk, reconcile an interrupted run, upload with bounded
// concurrency, report. Resolves to the process exit code.

import path from 'node:path';
import { ApiClient, type RetryPolicy } from './client.ts';
import { BufferPool } from './local-file.ts';
import { forEachBounded } from './pool.ts';
import { Progress } from './progress.ts';
import { reconcile } from './reconcile.ts';
import { Journal } from './state.ts';
import { uploadFile, type UploadOptions } from './uploader.ts';
import { walk, type WalkOptions } from './walk.ts';
import { EXIT, type Io } from './io.ts';
import { unreachable } from './preflight.ts';

export interface UploadCommand extends WalkOptions, Omit<UploadOptions, 'retry'> {
  paths: string[];
  server: string;
  token: string | undefined;
  concurrency: number;
  retry: RetryPolicy;
  /** Path of the state journal; undefined disables resuming. */
  state: string | undefined;
  json: boolean;
  quiet: boolean;
  progressIntervalMs: number;
}

export async function runUpload(cmd: UploadCommand, io: Io): Promise<number> {
  const progress = new Progress({ command: 'upload', json: cmd.json, quiet: cmd.quiet, intervalMs: cmd.progressIntervalMs, stdout: io.stdout, stderr: io.stderr });
  const client = new ApiClient({ server: cmd.server, token: cmd.token, connections: cmd.concurrency });
  const down = await unreachable(client, cmd.retry, io, 'upload');
  if (down !== undefined) return down;
  let journal: Journal | undefined;
  try {
    journal = cmd.state ? await Journal.open(cmd.state) : undefined;
  } catch (err) {
    await client.close();
    const e = err as { code?: string; message?: string };
    io.stderr.write(`sluice upload: ${e.code ?? 'STATE_ERROR'}: ${e.message ?? String(err)}\n`);
    return EXIT.FAILED;
  }
  const pool = new BufferPool(cmd.bufferMax, cmd.concurrency);
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

    await forEachBounded(
      tree.files,
      cmd.concurrency,
      async (file) => {
        progress.start(file.display);
        const result = await uploadFile(
          {
            client,
            journal,
            opts: cmd,
            pool,
            signal: io.signal,
            onBytes: (n) => progress.bytes(n),
            onRetry: (f, err, n, waitMs) => progress.note(`sluice: ${f.display}: ${err.code} (${err.message}); retry ${n} in ${Math.round(waitMs)} ms`),
          },
          file,
        );
        // An upload cut short by Ctrl-C is neither done nor failed: the next run picks it up.
        if (io.signal.aborted && result.error?.code === 'INTERRUPTED') return;
        progress.finish(result);
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
