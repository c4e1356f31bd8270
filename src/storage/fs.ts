// Local filesystem backend: the embedded default. A put writes a temp file in
// the target directory (fsyncing the parents of any directory it had to create),
// fsyncs it, renames it into place and fsyncs the directory, so a key either holds a complete object or does not exist, even
// across a crash. Temp files are dot-files invisible to listings; the reaper
// removes orphans through sweepStale.
//
// Conditional writes: every step that makes a key appear, change or vanish
// (rename, link, unlink) runs under that key's in-process lock, so putIf
// checks the etag and acts as one step. The etag is inode, size and
// mtime in nanoseconds: a put always makes a new inode, and none of the three
// changes on rename.

import { randomUUID } from 'node:crypto';
import { createWriteStream, type BigIntStats } from 'node:fs';
import { link, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import AsyncLock from 'async-lock';
import { SluiceError } from '../errors.ts';
import type {
  ConditionalWrites, GetOptions, GetResult, ListOptions, ListResult, LocalFiles, ObjectInfo, PutOptions, PutResult, StaleUploadSweeper,
  Storage, SweepStaleOptions, WriteCondition,
} from './storage.ts';

const TEMP_MARK = '.sluice-tmp-';
/** Directory entries kept sorted for listings, in all (about 100 bytes each). */
const DIR_CACHE_ENTRIES = 200_000;
/** A directory changed more recently than this is not cached (mtime granularity). */
const DIR_SETTLE_MS = 2000;

interface DirEntry {
  /** The entry's key; a directory's ends with "/". */
  key: string;
  isDir: boolean;
}

/** First index whose key is at or after `bound`, or the directory before it that contains `bound`. */
function lowerBound(entries: readonly DirEntry[], bound: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.key < bound) lo = mid + 1;
    else hi = mid;
  }
  const before = entries[lo - 1];
  return before?.isDir && bound.startsWith(before.key) ? lo - 1 : lo;
}

export class FsStorage implements Storage, StaleUploadSweeper, ConditionalWrites, LocalFiles {
  readonly kind = 'fs';
  // Write-stream buffer plus the stages' in-flight chunks.
  readonly bufferedBytesPerPut = 1024 * 1024;
  readonly root: string;
  // Held only around a rename, link or unlink and the stat before it, never while a body streams.
  readonly #keyLock = new AsyncLock({ maxPending: Infinity });
  /** Sorted entries of directories being paged through, least recently used first (#entries). */
  readonly #dirCache = new Map<string, { ino: bigint; mtimeNs: bigint; entries: DirEntry[] }>();
  #dirCacheEntries = 0;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  #path(key: string): string {
    // Keys come from keys.ts, never from client input; this guards against bugs, not users.
    if (key === '' || key.startsWith('/') || key.includes('\0') || key.split('/').some((s) => s === '' || s === '.' || s === '..' || s.startsWith(TEMP_MARK))) {
      throw new Error(`invalid storage key ${JSON.stringify(key)}`);
    }
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<PutResult> {
    const file = this.#path(key);
    const { tmp, size } = await this.#writeTemp(file, body, opts);
    try {
      await this.#keyLock.acquire(key, () => rename(tmp, file));
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await syncDir(path.dirname(file));
    return { size };
  }

  async putIf(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions & { condition: WriteCondition }): Promise<PutResult & { etag: string }> {
    const file = this.#path(key);
    const { tmp, size, etag } = await this.#writeTemp(file, body, opts);
    const cond = opts.condition;
    try {
      await this.#keyLock.acquire(key, async () => {
        if ('ifAbsent' in cond) {
          // link(2) fails if the name exists: atomic even against other processes.
          await link(tmp, file).catch((err: NodeJS.ErrnoException) => {
            throw err.code === 'EEXIST' ? new SluiceError('WRITE_CONFLICT', { cause: err }) : err;
          });
          await unlink(tmp);
          return;
        }
        const cur = await statOrNull(file);
        if (!cur || etagOf(cur) !== cond.ifMatch) throw new SluiceError('WRITE_CONFLICT');
        await rename(tmp, file);
      });
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await syncDir(path.dirname(file));
    return { size, etag };
  }

  /** Stream `body` into a synced temp file beside `file`; its etag is the one `file` will have once it is renamed or linked into place. */
  async #writeTemp(file: string, body: AsyncIterable<Uint8Array>, opts: PutOptions): Promise<{ tmp: string; size: number; etag: string }> {
    const dir = path.dirname(file);
    await mkdirDurable(dir);
    const tmp = path.join(dir, `${TEMP_MARK}${randomUUID()}`);
    let size = 0;
    const counted = async function* () {
      for await (const chunk of body) {
        size += chunk.byteLength;
        yield chunk;
      }
    };
    try {
      // flush: fsync before close, so the rename never publishes unwritten data.
      await pipeline(counted, createWriteStream(tmp, { flags: 'wx', flush: true }), opts.signal ? { signal: opts.signal } : {});
      return { tmp, size, etag: etagOf(await stat(tmp, { bigint: true })) };
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const file = this.#path(key);
    // Open first, then fstat the handle: size, etag and bytes all belong to one version even if a put replaces the key meanwhile.
    const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'EISDIR') throw new SluiceError('FILE_NOT_FOUND');
      throw err;
    });
    let st: BigIntStats;
    try {
      st = await fh.stat({ bigint: true });
    } catch (err) {
      await fh.close();
      throw err;
    }
    if (!st.isFile()) {
      await fh.close();
      throw new SluiceError('FILE_NOT_FOUND');
    }
    const size = Number(st.size);
    const { range } = opts;
    if (range && (range.start < 0 || range.end < range.start || range.start >= size)) {
      await fh.close();
      throw new SluiceError('RANGE_NOT_SATISFIABLE', { headers: { 'content-range': `bytes */${size}` } });
    }
    const body = fh.createReadStream(range ? { start: range.start, end: Math.min(range.end, size - 1), signal: opts.signal } : { signal: opts.signal });
    return { body, size, etag: etagOf(st) };
  }

  async localFile(key: string): Promise<{ file: string; size: number }> {
    const file = this.#path(key);
    const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new SluiceError('FILE_NOT_FOUND');
      throw err;
    });
    if (!st.isFile()) throw new SluiceError('FILE_NOT_FOUND');
    return { file, size: st.size };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const st = await statOrNull(this.#path(key));
    return st?.isFile() ? { key, size: Number(st.size), lastModified: st.mtime, etag: etagOf(st) } : null;
  }

  async delete(key: string): Promise<void> {
    const file = this.#path(key);
    const removed = await this.#keyLock.acquire(key, () => unlinkIfPresent(file));
    if (removed) await this.#prune(file);
  }

  /** Prune now-empty directories so listings do not grow with deleted files. */
  async #prune(file: string): Promise<void> {
    for (let dir = path.dirname(file); dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty (or gone): stop climbing
      }
    }
  }

  async list(opts: ListOptions): Promise<ListResult> {
    const limit = Math.min(opts.limit ?? 1000, 1000);
    const out: ListResult = { objects: [], prefixes: [], truncated: false };
    const slash = opts.prefix.lastIndexOf('/');
    const startDirKey = slash >= 0 ? opts.prefix.slice(0, slash + 1) : '';
    for await (const entry of this.#walk(startDirKey, opts)) {
      if (out.objects.length + out.prefixes.length >= limit) {
        out.truncated = true;
        break;
      }
      if (entry.kind === 'prefix') out.prefixes.push(entry.key);
      else out.objects.push(entry.info);
    }
    return out;
  }

  /** Depth-first walk in S3 key order (a directory sorts as "name/"). Each directory starts at the cursor by binary search. */
  async *#walk(
    dirKey: string,
    opts: ListOptions,
  ): AsyncGenerator<{ kind: 'prefix'; key: string } | { kind: 'object'; info: ObjectInfo }> {
    const named = await this.#entries(dirKey);
    let from = lowerBound(named, opts.prefix);
    if (opts.startAfter) from = Math.max(from, lowerBound(named, opts.startAfter));
    for (let i = from; i < named.length; i++) {
      const { key, isDir } = named[i]!;
      // Sorted: past the prefix, nothing further can match.
      if (key > opts.prefix && !key.startsWith(opts.prefix) && !opts.prefix.startsWith(key)) break;
      // Skip subtrees that cannot contain the prefix or lie wholly before startAfter.
      if (!key.startsWith(opts.prefix) && !opts.prefix.startsWith(key)) continue;
      if (opts.startAfter && isDir && !opts.startAfter.startsWith(key) && key < opts.startAfter) continue;
      if (isDir && key.startsWith(opts.prefix) && opts.delimiter && key.indexOf('/', opts.prefix.length) === key.length - 1) {
        if (!opts.startAfter || key > opts.startAfter) yield { kind: 'prefix', key };
        continue;
      }
      if (isDir) {
        yield* this.#walk(key, opts);
        continue;
      }
      if (!key.startsWith(opts.prefix) || (opts.startAfter && key <= opts.startAfter)) continue;
      const st = await stat(path.join(this.root, ...key.split('/'))).catch(() => null);
      if (st) yield { kind: 'object', info: { key, size: st.size, lastModified: st.mtime } };
    }
  }

  /**
   * A directory's entries in key order. Kept (up to DIR_CACHE_ENTRIES entries in all) while
   * the directory's inode and mtime stay the same, so paging through a large directory reads
   * and sorts it once, not once per page. A directory changed within the last
   * DIR_SETTLE_MS is read afresh each time: its mtime has the kernel tick's granularity,
   * so two changes inside one tick would look like none.
   */
  async #entries(dirKey: string): Promise<DirEntry[]> {
    const dir = dirKey ? path.join(this.root, ...dirKey.split('/').filter(Boolean)) : this.root;
    let st: BigIntStats;
    let entries;
    try {
      st = await stat(dir, { bigint: true });
      const hit = this.#dirCache.get(dir);
      if (hit && hit.ino === st.ino && hit.mtimeNs === st.mtimeNs) {
        this.#dirCache.delete(dir);
        this.#dirCache.set(dir, hit);
        return hit.entries;
      }
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    }
    const named = entries
      .filter((e) => !e.name.startsWith(TEMP_MARK) && (e.isDirectory() || e.isFile()))
      .map((e) => ({ key: dirKey + e.name + (e.isDirectory() ? '/' : ''), isDir: e.isDirectory() }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const settled = Date.now() - Number(st.mtimeMs) > DIR_SETTLE_MS;
    if (settled && named.length <= DIR_CACHE_ENTRIES) {
      const old = this.#dirCache.get(dir);
      if (old) this.#dirCacheEntries -= old.entries.length;
      this.#dirCache.delete(dir);
      this.#dirCache.set(dir, { ino: st.ino, mtimeNs: st.mtimeNs, entries: named });
      this.#dirCacheEntries += named.length;
      for (const [d, v] of this.#dirCache) {
        if (this.#dirCacheEntries <= DIR_CACHE_ENTRIES) break;
        this.#dirCache.delete(d);
        this.#dirCacheEntries -= v.entries.length;
      }
    }
    return named;
  }

  async ready(): Promise<void> {
    try {
      // Prove the root is writable, not just present.
      await mkdir(this.root, { recursive: true });
      const probe = path.join(this.root, `${TEMP_MARK}ready-${randomUUID()}`);
      await (await open(probe, 'wx')).close();
      await unlink(probe);
    } catch (err) {
      throw new SluiceError('STORAGE_UNAVAILABLE', { cause: err });
    }
  }

  /** Temp files of puts that died; `key` narrows the walk to the temp files beside that key. (A temp file names no key, so `keep` has nothing to ask about.) */
  async sweepStale(opts: SweepStaleOptions): Promise<number> {
    let removed = 0;
    const visit = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await visit(p);
        else if (e.name.startsWith(TEMP_MARK)) {
          const st = await stat(p).catch(() => null);
          if (st && st.mtime < opts.olderThan) {
            await unlink(p).catch(() => {});
            removed++;
          }
        }
      }
    };
    const from = opts.key !== undefined ? opts.key.slice(0, opts.key.lastIndexOf('/') + 1) : opts.prefix;
    await visit(path.join(this.root, ...from.split('/').filter(Boolean)));
    return removed;
  }

  async close(): Promise<void> {}
}

function etagOf(st: BigIntStats): string {
  return `"${st.ino.toString(36)}-${st.size.toString(36)}-${st.mtimeNs.toString(36)}"`;
}

async function statOrNull(file: string): Promise<BigIntStats | null> {
  try {
    return await stat(file, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

async function unlinkIfPresent(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return false;
  }
}

/**
 * mkdir -p, then fsync the parent of every directory it created (a new directory's
 * entry lives in its parent), so a file later made durable in `dir` cannot lose its
 * path to a power cut. `dir` itself is fsynced after the rename that fills it.
 * Costs one fsync per directory created, none when `dir` already existed.
 */
async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const parents: string[] = [];
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    parents.push(d);
    if (d === path.dirname(first) || d === path.dirname(d)) break;
  }
  // Deepest first: a parent's entry is made durable only after its child's contents.
  for (const d of parents) await syncDir(d);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
