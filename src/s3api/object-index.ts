// S3 keys → sluice files. A file's `path` is its S3 key, but sluice files are
// found by id, so the endpoint keeps one small entry per key:
//
//   <prefix>/_system/s3/<tenant>/objects/<key>   { id, size, sha256, lastModified }
//
// stored under the key itself, so a ListObjectsV2 page is one storage listing
// in S3's key order (prefix and delimiter map straight onto the port's list).
// A PutObject commits the new file first, then swaps the entry with a
// conditional write (compare-and-swap on the etag it read), then deletes the
// file it replaced; a crash in between leaves the old or new file visible in
// /v1 only, never a key pointing at nothing. The fs backend cannot hold a key
// that is also another key's folder ("a" and "a/b"); S3 can.

import { SluiceError, isSluiceError } from '../errors.ts';
import { mapBounded } from '../core/files.ts';
import { systemPrefix } from '../core/keys.ts';
import { bytesOf, conditionalWrites, readSmallObjectVersion, type Storage } from '../storage/storage.ts';
import { S3Error } from './errors.ts';

export interface IndexEntry {
  id: string;
  size: number;
  sha256: string;
  lastModified: string;
}

/** Where the endpoint's state lives, one folder per tenant. */
export function s3StatePrefix(keyPrefix: string): string {
  return `${systemPrefix(keyPrefix)}s3/`;
}

export function objectsPrefix(keyPrefix: string, tenant: string): string {
  return `${s3StatePrefix(keyPrefix)}${tenant}/objects/`;
}

export function uploadsPrefix(keyPrefix: string, tenant: string): string {
  return `${s3StatePrefix(keyPrefix)}${tenant}/uploads/`;
}

/** Compare-and-swap attempts before a PutObject gives up on a key many writers hammer at once. */
const SWAP_ATTEMPTS = 5;
const LIST_READ_CONCURRENCY = 8;

export class ObjectIndex {
  readonly #storage: Storage;
  readonly #keyPrefix: string;

  constructor(storage: Storage, keyPrefix: string) {
    this.#storage = storage;
    this.#keyPrefix = keyPrefix;
  }

  #entryKey(tenant: string, key: string): string {
    return objectsPrefix(this.#keyPrefix, tenant) + key;
  }

  async get(tenant: string, key: string): Promise<{ entry: IndexEntry; etag: string } | undefined> {
    try {
      const { bytes, etag } = await readSmallObjectVersion(this.#storage, this.#entryKey(tenant, key), 64 * 1024);
      return { entry: JSON.parse(bytes.toString('utf8')) as IndexEntry, etag: etag ?? '' };
    } catch (err) {
      if (isSluiceError(err) && err.code === 'FILE_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Point `key` at `entry`; resolves with the file id it replaced, if any (the caller deletes that file). */
  async set(tenant: string, key: string, entry: IndexEntry): Promise<string | undefined> {
    const storage = conditionalWrites(this.#storage);
    const body = Buffer.from(JSON.stringify(entry));
    for (let attempt = 1; ; attempt++) {
      const current = await this.get(tenant, key);
      try {
        await storage.putIf(this.#entryKey(tenant, key), bytesOf(body), {
          contentType: 'application/json',
          condition: current ? { ifMatch: current.etag } : { ifAbsent: true },
        });
        return current?.entry.id;
      } catch (err) {
        if (isSluiceError(err) && err.code === 'WRITE_CONFLICT' && attempt < SWAP_ATTEMPTS) continue;
        const code = (err as NodeJS.ErrnoException | null)?.code;
        if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
          throw new S3Error('InvalidArgument', 'On this server (fs storage) a key cannot also be the folder of another key', { cause: err });
        }
        throw err;
      }
    }
  }

  async delete(tenant: string, key: string): Promise<IndexEntry | undefined> {
    const current = await this.get(tenant, key);
    if (!current) return undefined;
    await this.#storage.delete(this.#entryKey(tenant, key));
    return current.entry;
  }

  /** One ListObjectsV2 page: entries and common prefixes after `startAfter` (an S3 key). */
  async list(
    tenant: string,
    opts: { prefix: string; delimiter: '/' | undefined; startAfter: string | undefined; limit: number },
  ): Promise<{ objects: { key: string; entry: IndexEntry }[]; prefixes: string[]; truncated: boolean }> {
    const base = objectsPrefix(this.#keyPrefix, tenant);
    const page = await this.#storage.list({
      prefix: base + opts.prefix,
      ...(opts.delimiter ? { delimiter: opts.delimiter } : {}),
      startAfter: opts.startAfter === undefined ? undefined : base + opts.startAfter,
      limit: opts.limit,
    });
    // One small read per entry, a bounded number at once; an entry deleted since the listing is left out.
    const read = await mapBounded(page.objects, LIST_READ_CONCURRENCY, async (o) => {
      const key = o.key.slice(base.length);
      const got = await this.get(tenant, key);
      return got ? { key, entry: got.entry } : undefined;
    });
    const objects = read.filter((o): o is { key: string; entry: IndexEntry } => o !== undefined);
    return { objects, prefixes: page.prefixes.map((p) => p.slice(base.length)), truncated: page.truncated };
  }
}

export function notFound(key: string): S3Error {
  return new S3Error('NoSuchKey', 'The specified key does not exist.', { cause: new SluiceError('FILE_NOT_FOUND', { message: key }) });
}
