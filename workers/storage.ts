// One storage client per worker thread, opened on first use and reused by
// every task (S3 keeps its connection pool; fs is stateless).

import { FsStorage } from '../src/storage/fs.ts';
import { S3Storage } from '../src/storage/s3.ts';
import type { Storage } from '../src/storage/storage.ts';
import type { StorageSpec } from './tasks.ts';

const opened = new Map<string, Storage>();

export function workerStorage(spec: StorageSpec): Storage {
  const id = JSON.stringify(spec);
  let s = opened.get(id);
  if (!s) {
    s = spec.kind === 's3' ? new S3Storage(spec.s3) : new FsStorage(spec.dataDir);
    opened.set(id, s);
  }
  return s;
}
