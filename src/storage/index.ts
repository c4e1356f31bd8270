import type { Config } from '../config.ts';
import { FsStorage } from './fs.ts';
import { S3Storage } from './s3.ts';
import type { Storage } from './storage.ts';

export function createStorage(config: Readonly<Config>): Storage {
  return config.storage.kind === 's3' ? new S3Storage(config.storage.s3) : new FsStorage(config.storage.dataDir);
}
