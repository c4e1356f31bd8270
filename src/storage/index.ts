import type { Config } from '../config.ts';
import { FsStorage } from './fs.ts';
import type { Storage } from './storage.ts';

/** The configured adapter. The S3 one (and the AWS SDK under it) is imported only when storage is s3. */
export async function createStorage(config: Readonly<Config>): Promise<Storage> {
  if (config.storage.kind !== 's3') return new FsStorage(config.storage.dataDir);
  const { S3Storage } = await import('./s3.ts');
  return new S3Storage(config.storage.s3);
}
