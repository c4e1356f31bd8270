// Turns the command line's paths and globs into the list of files to upload.
//
// - A directory argument is walked recursively; a file argument is taken as is.
// - An argument that does not exist but contains glob characters is expanded
//   with fs.glob (relative to the working directory); each match is then
//   treated like an argument.
// - Symlinks named on the command line are followed. Symlinks met while
//   walking are skipped unless followSymlinks is set; then directories are
//   entered once each (by device and inode), so cycles end.
// - include/exclude: a pattern without "/" matches the file's base name, one
//   with "/" matches the path relative to the argument's directory (picomatch
//   glob syntax; `*` and `**` match dot-files too, since a walk includes
//   them). A file must match some include (when any is given) and no exclude.
// - Sockets, FIFOs and devices are skipped.
// - Each file gets the path it is stored under (`remote`, see LocalFile).

import { glob, lstat, readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { forEachBounded } from './pool.ts';

export interface LocalFile {
  /** Absolute path: the identity of the file in the state journal. */
  abs: string;
  /** The path as shown to the user: the argument joined with the path inside it. */
  display: string;
  /**
   * The path stored on the server: a directory argument's own name, then the
   * path inside it (`sluice upload ./photos` → `photos/2024/a.jpg`); a file
   * argument's base name. '/'-separated and NFC, whatever the platform.
   */
  remote: string;
  size: number;
  mtimeMs: number;
}

export interface Skipped {
  display: string;
  reason: 'symlink' | 'special' | 'excluded';
}

export interface WalkProblem {
  display: string;
  code: string;
  message: string;
}

export interface WalkOptions {
  followSymlinks: boolean;
  include: readonly string[];
  exclude: readonly string[];
}

export interface WalkResult {
  files: LocalFile[];
  skipped: Skipped[];
  problems: WalkProblem[];
}

const GLOB_CHARS = /[*?[\]{}]/;
/** stat() calls in flight while walking one directory. */
const STAT_CONCURRENCY = 32;

export async function walk(args: readonly string[], opts: WalkOptions): Promise<WalkResult> {
  const out: WalkResult = { files: [], skipped: [], problems: [] };
  const seenFiles = new Set<string>();
  const seenDirs = new Set<string>();

  const include = compile(opts.include);
  const exclude = compile(opts.exclude);
  const addFile = (abs: string, display: string, rel: string, root: string, st: Stats) => {
    if (!matches(rel, include, exclude)) {
      out.skipped.push({ display, reason: 'excluded' });
      return;
    }
    if (seenFiles.has(abs)) return;
    seenFiles.add(abs);
    const remote = (root === '' ? rel : `${root}/${rel}`).normalize('NFC');
    out.files.push({ abs, display, remote, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) });
  };

  const walkDir = async (dirAbs: string, dirDisplay: string, relBase: string, root: string, st: Stats): Promise<void> => {
    const dirId = `${st.dev}:${st.ino}`;
    if (seenDirs.has(dirId)) return;
    seenDirs.add(dirId);
    let entries;
    try {
      entries = await readdir(dirAbs, { withFileTypes: true });
    } catch (err) {
      out.problems.push(problem(dirDisplay, err));
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: { abs: string; display: string; rel: string; st: Stats }[] = [];
    await forEachBounded(entries, STAT_CONCURRENCY, async (e) => {
      const abs = path.join(dirAbs, e.name);
      const display = path.join(dirDisplay, e.name);
      const rel = relBase === '' ? e.name : `${relBase}/${e.name}`;
      if (e.isSymbolicLink() && !opts.followSymlinks) {
        out.skipped.push({ display, reason: 'symlink' });
        return;
      }
      let st: Stats;
      try {
        st = await stat(abs);
      } catch (err) {
        out.problems.push(problem(display, err));
        return;
      }
      if (st.isDirectory()) subdirs.push({ abs, display, rel, st });
      else if (st.isFile()) addFile(abs, display, rel, root, st);
      else out.skipped.push({ display, reason: 'special' });
    });
    subdirs.sort((a, b) => (a.abs < b.abs ? -1 : 1));
    for (const d of subdirs) await walkDir(d.abs, d.display, d.rel, root, d.st);
  };

  const visitArg = async (arg: string): Promise<void> => {
    const abs = path.resolve(arg);
    let st: Stats;
    try {
      st = await stat(abs); // arguments: symlinks are followed
    } catch (err) {
      out.problems.push(problem(arg, err));
      return;
    }
    // The root directory of the file system has no name: its files keep their paths inside it.
    if (st.isDirectory()) await walkDir(abs, arg, '', path.basename(abs), st);
    else if (st.isFile()) addFile(abs, arg, path.basename(abs), '', st);
    else out.skipped.push({ display: arg, reason: 'special' });
  };

  for (const arg of args) {
    if (GLOB_CHARS.test(arg) && !(await exists(arg))) {
      const matched: string[] = [];
      for await (const m of glob(arg)) matched.push(m);
      if (matched.length === 0) out.problems.push({ display: arg, code: 'NO_MATCH', message: 'no file matches this pattern' });
      matched.sort();
      for (const m of matched) await visitArg(m);
    } else {
      await visitArg(arg);
    }
  }
  return out;
}

type Matcher = (rel: string, base: string) => boolean;

function compile(patterns: readonly string[]): Matcher[] {
  return patterns.map((p) => {
    const m = picomatch(p, { dot: true });
    return p.includes('/') ? (rel) => m(rel) : (_rel, base) => m(base);
  });
}

function matches(rel: string, include: Matcher[], exclude: Matcher[]): boolean {
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  if (include.length > 0 && !include.some((m) => m(rel, base))) return false;
  return !exclude.some((m) => m(rel, base));
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

function problem(display: string, err: unknown): WalkProblem {
  const e = err as NodeJS.ErrnoException;
  return { display, code: e.code ?? 'WALK_ERROR', message: e.message };
}
