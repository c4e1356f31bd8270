// After a run that stopped mid-upload, the journal holds "begin" records with
// no outcome: the server may have committed those files just before the kill.
// Before uploading them again, look for them on the server: list the files
// created since the earliest such begin (ids are UUIDv7, so a cursor built
// from a timestamp starts the listing there) and match on stored path,
// size and sha256. A match is recorded as done; the rest upload as usual.
// Cost: one local hash per dangling file (at most the old concurrency) and
// a listing of the files created since the interrupted run's last uploads.

import type { ApiClient } from './client.ts';
import { sha256File } from './local-file.ts';
import { forEachBounded } from './pool.ts';
import type { FileRecord, Journal } from './state.ts';
import type { LocalFile } from './walk.ts';

/** Allowance for clock skew between this machine and the server. */
const CLOCK_SKEW_MS = 5 * 60_000;
const PAGE = 1000;

interface Listed {
  id: string;
  name: string;
  path?: string;
  size: number;
  sha256: string;
}

/** Returns how many interrupted uploads turned out to be committed. */
export async function reconcile(client: ApiClient, journal: Journal, files: readonly LocalFile[], signal: AbortSignal): Promise<number> {
  const byPath = new Map(files.map((f) => [f.abs, f]));
  // Only files still as they were when their upload began can match what the server holds.
  const dangling: { rec: FileRecord; file: LocalFile; sha256?: string }[] = [];
  for (const rec of journal.pending(client.server)) {
    const file = byPath.get(rec.path);
    if (file && file.size === rec.size && file.mtimeMs === rec.mtimeMs && rec.at) dangling.push({ rec, file });
  }
  if (dangling.length === 0) return 0;

  await forEachBounded(dangling, 4, async (d) => {
    d.sha256 = (await sha256File(d.file.abs, signal, d.file.size)).sha256;
  }, signal);

  const since = Math.min(...dangling.map((d) => Date.parse(d.rec.at!))) - CLOCK_SKEW_MS;
  const wanted = new Map<string, typeof dangling>();
  for (const d of dangling) {
    const k = matchKey(d.file.remote, d.file.size, d.sha256!);
    wanted.set(k, [...(wanted.get(k) ?? []), d]);
  }

  let found = 0;
  await listSince(client, since, signal, async (f) => {
    const k = matchKey(f.path ?? f.name, f.size, f.sha256);
    const waiting = wanted.get(k);
    const d = waiting?.shift();
    if (!d) return wanted.size > 0;
    if (waiting!.length === 0) wanted.delete(k);
    await journal.done({ ...d.rec, sha256: f.sha256, id: f.id });
    found++;
    return wanted.size > 0;
  });
  return found;
}

/**
 * The id of a file matching name, size and sha256 created since `sinceMs`
 * (our clock; widened by the known or assumed server clock skew), if any.
 * Used when a connection broke after the whole body was sent: the server may
 * have committed it, and retrying blindly would store it twice.
 */
export async function findCommitted(
  client: ApiClient,
  want: { name: string; path: string; size: number; sha256: string },
  sinceMs: number,
  signal: AbortSignal,
): Promise<string | undefined> {
  return (await findCommittedMany(client, [want], sinceMs, signal))[0];
}

/** findCommitted for the files of one request (a batch): their ids, in order, undefined where not found. */
export async function findCommittedMany(
  client: ApiClient,
  wants: readonly { path: string; size: number; sha256: string }[],
  sinceMs: number,
  signal: AbortSignal,
): Promise<(string | undefined)[]> {
  const since = client.clockOffsetMs === undefined ? sinceMs - CLOCK_SKEW_MS : sinceMs + client.clockOffsetMs - 2000;
  const waiting = new Map<string, number[]>();
  wants.forEach((w, i) => {
    const k = matchKey(w.path, w.size, w.sha256);
    waiting.set(k, [...(waiting.get(k) ?? []), i]);
  });
  const ids: (string | undefined)[] = wants.map(() => undefined);
  let left = wants.length;
  await listSince(client, since, signal, async (f) => {
    const k = matchKey(f.path ?? f.name, f.size, f.sha256);
    const i = waiting.get(k)?.shift();
    if (i !== undefined) {
      ids[i] = f.id;
      left--;
    }
    return left > 0;
  });
  return ids;
}

/** Pages through files created since `sinceMs` (server clock), oldest first, while `visit` returns true. */
async function listSince(client: ApiClient, sinceMs: number, signal: AbortSignal, visit: (f: Listed) => Promise<boolean>): Promise<void> {
  let cursor: string | undefined = uuidV7Floor(sinceMs);
  while (cursor !== undefined) {
    const page: { files: Listed[]; nextCursor?: string } = await client.json({ method: 'GET', path: `/v1/files?limit=${PAGE}&cursor=${cursor}`, signal });
    for (const f of page.files) if (!(await visit(f))) return;
    cursor = page.nextCursor;
  }
}

function matchKey(name: string, size: number, sha256: string): string {
  return `${name}\n${size}\n${sha256}`;
}

/** The smallest UUIDv7 of a millisecond: every id created at or after `ms` sorts after it. */
export function uuidV7Floor(ms: number): string {
  const t = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7000-8000-000000000000`;
}
