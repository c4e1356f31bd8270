// One multi-file request is one commit. Its manifests are written one by one,
// so a crash between two of them would leave some files of a request that was
// never answered visible. A commit record makes the request all-or-nothing:
//
//   1. <prefix>/_system/commits/<tenant>/<commitId>  written first: "pending"
//   2. each file's job marker and manifest, carrying `commit: <commitId>`
//   3. the commit record deleted: this one delete is the commit point
//
// A manifest that names a commit is visible only once that commit record is
// gone. A crash before step 3 leaves the record, so readers hide every file of
// the request, and the reaper (commit records older than its max age, which is
// longer than any request may live: SLUICE_UPLOAD_DEADLINE_MS) removes the
// files, then the record. A single-file request needs none of this: its one
// manifest write is already atomic.
//
// Cost: two extra small writes per multi-file request; one HEAD per first read
// of such a file in a process (a settled commit never becomes pending again,
// so the answer is cached).

import { z } from 'zod';
import { bytesOf, readSmallObject, type Storage } from '../storage/storage.ts';
import { isFileId, isTenant, newFileId, systemPrefix } from './keys.ts';

const recordSchema = z.object({ tenant: z.string(), files: z.array(z.string()).max(20_000), createdAt: z.iso.datetime() });
export type CommitRecord = z.infer<typeof recordSchema>;

export function commitsPrefix(prefix: string): string {
  return `${systemPrefix(prefix)}commits/`;
}

export function commitKey(prefix: string, tenant: string, commitId: string): string {
  if (!isTenant(tenant) || !isFileId(commitId)) throw new Error('invalid commit reference');
  return `${commitsPrefix(prefix)}${tenant}/${commitId}`;
}

/** Step 1: the pending record, naming every file of the request. */
export async function beginCommit(storage: Storage, prefix: string, tenant: string, fileIds: readonly string[]): Promise<string> {
  const commitId = newFileId();
  const record: CommitRecord = { tenant, files: [...fileIds], createdAt: new Date().toISOString() };
  await storage.put(commitKey(prefix, tenant, commitId), bytesOf(Buffer.from(JSON.stringify(record))), { contentType: 'application/json' });
  return commitId;
}

/** Step 3, the commit point: every manifest naming this commit becomes visible at once. */
export async function settleCommit(storage: Storage, prefix: string, tenant: string, commitId: string): Promise<void> {
  await storage.delete(commitKey(prefix, tenant, commitId));
  settled(storage).add(commitId);
}

/** Commits known to be settled, per storage. Bounded: past the bound the oldest are forgotten (and asked again). */
const SETTLED_MAX = 10_000;
const settledSets = new WeakMap<Storage, Set<string>>();
function settled(storage: Storage): { has(id: string): boolean; add(id: string): void } {
  let set = settledSets.get(storage);
  if (!set) settledSets.set(storage, (set = new Set()));
  const s = set;
  return {
    has: (id) => s.has(id),
    add: (id) => {
      s.add(id);
      if (s.size > SETTLED_MAX) s.delete(s.values().next().value!);
    },
  };
}

/** Whether the request that wrote a manifest naming `commitId` has committed. */
export async function isCommitted(storage: Storage, prefix: string, tenant: string, commitId: string): Promise<boolean> {
  const cache = settled(storage);
  if (cache.has(commitId)) return true;
  if (await storage.head(commitKey(prefix, tenant, commitId))) return false;
  cache.add(commitId);
  return true;
}

export interface PendingCommit {
  key: string;
  commitId: string;
  lastModified: Date;
  read(): Promise<CommitRecord | undefined>;
}

/** Pending commit records, oldest key first, a page of 1,000 at a time. */
export async function* pendingCommits(storage: Storage, prefix: string): AsyncGenerator<PendingCommit> {
  const base = commitsPrefix(prefix);
  let startAfter: string | undefined;
  for (;;) {
    const page = await storage.list({ prefix: base, startAfter, limit: 1000 });
    for (const o of page.objects) {
      const commitId = o.key.slice(o.key.lastIndexOf('/') + 1);
      yield {
        key: o.key,
        commitId,
        lastModified: o.lastModified,
        read: async () => {
          try {
            const parsed = recordSchema.safeParse(JSON.parse((await readSmallObject(storage, o.key)).toString('utf8')));
            return parsed.success ? parsed.data : undefined;
          } catch (err) {
            if ((err as { code?: string }).code === 'FILE_NOT_FOUND') return undefined;
            throw err;
          }
        },
      };
    }
    if (!page.truncated || page.objects.length === 0) return;
    startAfter = page.objects.at(-1)!.key;
  }
}
