// Runs the real `sluice` CLI (bin/sluice.js) as a child process, and builds
// file trees for it to upload.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call } from './http.ts';

export const CLI = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as NDJSON (with --json). */
  lines: Array<Record<string, unknown>>;
}

export interface Spawned {
  child: ChildProcess;
  /** Resolves once the process exited. */
  done: Promise<CliRun>;
  /** Resolves with the NDJSON lines seen so far once `n` of them satisfy `pred`. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, n?: number): Promise<void>;
}

export function spawnCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Spawned {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    // No SLUICE_* leaking in from the developer's shell; NO_COLOR keeps output plain.
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const lines: Array<Record<string, unknown>> = [];
  const watchers: Array<{ pred: (l: Record<string, unknown>) => boolean; n: number; seen: number; resolve: () => void }> = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    partial += s;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      if (!p.startsWith('{')) continue;
      const line = JSON.parse(p) as Record<string, unknown>;
      lines.push(line);
      for (const w of watchers) if (w.pred(line) && ++w.seen === w.n) w.resolve();
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<CliRun>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, lines }));
  });
  return {
    child,
    done,
    waitFor: (pred, n = 1) =>
      new Promise<void>((resolve, reject) => {
        const seen = lines.filter(pred).length;
        if (seen >= n) return resolve();
        watchers.push({ pred, n, seen, resolve });
        void done.then(() => reject(new Error(`CLI exited before ${n} matching lines`)));
      }),
  };
}

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliRun> {
  return spawnCli(args, opts).done;
}

export async function tempDir(label: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `sluice-cli-${label}-`));
}

/** Writes `files` (relative path → contents) under `root`. */
export async function writeTree(root: string, files: Record<string, Buffer | string>): Promise<void> {
  for (const [rel, data] of Object.entries(files)) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, data);
  }
}

export interface ListedFile {
  id: string;
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** Every committed file of the default tenant, through the API. */
export async function listAll(url: string): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  let cursor: string | undefined;
  for (;;) {
    const r = await call(`${url}/v1/files?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    const page = r.json<{ files: ListedFile[]; nextCursor?: string }>();
    out.push(...page.files);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
}

export const fileLines = (run: CliRun) => run.lines.filter((l) => l.type === 'file');
export const summaryOf = (run: CliRun) => run.lines.find((l) => l.type === 'summary') as Record<string, unknown> | undefined;
