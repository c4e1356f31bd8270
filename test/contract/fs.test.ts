import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsStorage } from '../../src/storage/fs.ts';
import { storageContract } from './storage-contract.ts';

storageContract({
  name: 'fs',
  async make() {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-contract-'));
    return { storage: new FsStorage(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
});
