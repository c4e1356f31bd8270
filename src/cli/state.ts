// The upload journal: an append-only NDJSON file that makes re-runs skip
// what is already ingested and keeps a killed run from duplicating files.
//
// Per file (keyed by server URL and absolute path) it records:
//   {"op":"begin", ...}  written before the upload request is sent
//   {"op":"done", ..., "id":"..."}  written after the server answered 201
//   {"op":"clear", ...}  written when the server refused the file (nothing committed)
// A file is skipped when its last record is "done" with the same size and
// mtime (and, with --checksum, the same sha256). A "begin" with nothing after
// it means the run stopped while that upload was in flight: the server may or
// may not have committed it, so the next run asks the server (see
// reconcile.ts) before uploading again.
//
// Records are appended with write(2) to a file opened O_APPEND (lines queued
// during a write go out together in the next), so a kill leaves at worst a
// torn last line, which load() ignores. Records reach the kernel at
// once; only an OS crash can lose the tail (then a file may be uploaded twice).

import { open, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { CliError } from './client.ts';

export interface FileRecord {
  server: string;
  path: string;
  size: number;
  mtimeMs: number;
  sha256?: string;
  /** ISO time the begin was written (begin records). */
  at?: string;
  /** Server file id (done records). */
  id?: string;
}

type Op = 'begin' | 'done' | 'clear';

interface Entry {
  done?: FileRecord;
  /** A begin with no done or clear after it. */
  pending?: FileRecord;
}

const HEADER = { sluice: 'upload-state', v: 1 };

export class Journal {
  readonly file: string;
  #entries = new Map<string, Entry>();
  #fh: FileHandle | undefined;
  #queue: Promise<void> = Promise.resolve();
  #pending: string[] = [];
  #lines = 0;
  /** Unparsable lines met on load (a torn last line after a kill). */
  torn = 0;

  private constructor(file: string) {
    this.file = file;
  }

  static async open(file: string): Promise<Journal> {
    const j = new Journal(file);
    await lock(file);
    try {
      await j.#load();
    } catch (err) {
      await unlock(file);
      throw err;
    }
    // Rewrite when superseded records dominate, so the file tracks the tree, not the history.
    if (j.#lines > 2 * j.#entries.size + 1000 || j.torn > 0) await j.#compact();
    j.#fh = await open(file, 'a');
    if (j.#lines === 0) await j.#fh.write(JSON.stringify(HEADER) + '\n');
    return j;
  }

  lookup(server: string, path: string): Readonly<Entry> | undefined {
    return this.#entries.get(key(server, path));
  }

  /** Begins left by a run that stopped mid-upload, for this server. */
  pending(server: string): FileRecord[] {
    const out: FileRecord[] = [];
    for (const e of this.#entries.values()) if (e.pending && e.pending.server === server) out.push(e.pending);
    return out;
  }

  begin(rec: FileRecord): Promise<void> {
    return this.#append('begin', { ...rec, at: new Date().toISOString() });
  }

  done(rec: FileRecord & { id: string; sha256: string }): Promise<void> {
    return this.#append('done', rec);
  }

  clear(rec: FileRecord): Promise<void> {
    return this.#append('clear', rec);
  }

  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) {
      await fh.sync();
      await fh.close();
      await unlock(this.file);
    }
  }

  #apply(op: Op, rec: FileRecord): void {
    const k = key(rec.server, rec.path);
    const e = this.#entries.get(k) ?? {};
    if (op === 'begin') e.pending = rec;
    else {
      delete e.pending;
      if (op === 'done') e.done = rec;
    }
    this.#entries.set(k, e);
  }

  #append(op: Op, rec: FileRecord): Promise<void> {
    this.#apply(op, rec);
    this.#pending.push(JSON.stringify({ op, ...rec }) + '\n');
    // Lines queued while a write is in flight go out together in the next one:
    // one write(2) per batch, in order; each caller resolves once its line is written.
    this.#queue = this.#queue.then(() => this.#flush());
    return this.#queue;
  }

  async #flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    if (!this.#fh) throw new Error('state file is closed');
    const lines = this.#pending;
    this.#pending = [];
    await this.#fh.write(lines.join(''));
    this.#lines += lines.length;
  }

  async #load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.#lines++;
      let rec: (FileRecord & { op?: string; sluice?: string }) | undefined;
      try {
        rec = JSON.parse(line) as FileRecord & { op?: string; sluice?: string };
      } catch {
        this.torn++;
        continue;
      }
      if (rec.sluice === HEADER.sluice) continue;
      if ((rec.op === 'begin' || rec.op === 'done' || rec.op === 'clear') && typeof rec.path === 'string' && typeof rec.server === 'string') {
        const { op, ...r } = rec;
        this.#apply(op, r);
      } else {
        this.torn++;
      }
    }
  }

  async #compact(): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      let buf = JSON.stringify(HEADER) + '\n';
      let lines = 1;
      for (const e of this.#entries.values()) {
        if (e.done) buf += JSON.stringify({ op: 'done', ...e.done }) + '\n';
        if (e.pending) buf += JSON.stringify({ op: 'begin', ...e.pending }) + '\n';
        lines += (e.done ? 1 : 0) + (e.pending ? 1 : 0);
        if (buf.length > 1 << 20) {
          await fh.write(buf);
          buf = '';
        }
      }
      await fh.write(buf);
      await fh.sync();
      this.#lines = lines;
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    this.torn = 0;
  }
}

/**
 * One run per journal: two overlapping runs (a cron job that outlived its
 * slot) would both upload the same files. The lock file holds the owner's
 * pid; a lock whose process is gone (killed) is taken over.
 */
async function lock(file: string): Promise<void> {
  const lockFile = `${file}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
      throw new CliError('JOURNAL_LOCKED', `${file} is in use by another sluice run (pid ${owner}); if it is not, remove ${lockFile}`);
    }
    await unlink(lockFile).catch(() => {});
  }
  throw new CliError('JOURNAL_LOCKED', `could not lock ${file}`);
}

async function unlock(file: string): Promise<void> {
  await unlink(`${file}.lock`).catch(() => {});
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function key(server: string, path: string): string {
  return `${server}\n${path}`;
}
