// The tus checksum extension. A PATCH carrying `Upload-Checksum: <algo> <base64>`
// must not change the upload unless its body matches. The stores append as
// bytes arrive (the S3 store sends every full part at once), so the body is
// first spooled to a temp file while it is hashed, and handed to the store
// only when it matched; on mismatch it is dropped and the answer is 460.
// Cost: one extra write and read of that PATCH on local disk, only for PATCHes
// that ask for it; memory stays at a stream buffer. Disk is bounded too: all
// spooled bodies of the process together stay within a SpoolBudget
// (SLUICE_TUS_CHECKSUM_SPOOL_BYTES); a PATCH that would pass it is refused
// 507 CHECKSUM_SPOOL_FULL at that byte, and what it spooled is dropped.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SluiceError } from '../errors.ts';
import { byteLimit } from '../core/stages/byte-limit.ts';

export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;
type Algorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface UploadChecksum {
  algorithm: Algorithm;
  digest: Buffer;
}

export function parseUploadChecksum(header: string): UploadChecksum {
  const m = /^\s*([A-Za-z0-9-]+)\s+([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!m) throw new SluiceError('INVALID_DIGEST', { message: 'Upload-Checksum must be "<algorithm> <base64 digest>"' });
  const algorithm = m[1]!.toLowerCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) throw new SluiceError('CHECKSUM_ALGORITHM_UNSUPPORTED');
  return { algorithm: algorithm as Algorithm, digest: Buffer.from(m[2]!, 'base64') };
}

/** Bytes of spooled PATCH bodies on local disk, process-wide; taken as they arrive, given back when a spool is removed. */
export class SpoolBudget {
  readonly capacity: number;
  #used = 0;
  constructor(capacity: number) {
    this.capacity = capacity;
  }
  get used(): number {
    return this.#used;
  }
  take(bytes: number): void {
    if (this.#used + bytes > this.capacity) throw new SluiceError('CHECKSUM_SPOOL_FULL', { details: { limitBytes: this.capacity } });
    this.#used += bytes;
  }
  give(bytes: number): void {
    this.#used -= bytes;
  }
}

export interface SpooledBody {
  size: number;
  open(): Readable;
  remove(): Promise<void>;
}

/** Spool `body` (at most maxBytes) to a temp file; resolves only when it matches `want`. */
export async function spoolVerified(
  body: AsyncIterable<Uint8Array>,
  want: UploadChecksum,
  opts: { maxBytes: number; signal: AbortSignal; budget: SpoolBudget },
): Promise<SpooledBody> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-tus-'));
  const file = path.join(dir, 'body');
  let taken = 0;
  const remove = async () => {
    await rm(dir, { recursive: true, force: true });
    opts.budget.give(taken);
    taken = 0;
  };
  const hash = createHash(want.algorithm);
  let size = 0;
  try {
    await pipeline(
      body,
      byteLimit(opts.maxBytes, 'FILE_TOO_LARGE'),
      async function* hashed(source: AsyncIterable<Uint8Array>) {
        for await (const chunk of source) {
          opts.budget.take(chunk.byteLength);
          taken += chunk.byteLength;
          hash.update(chunk);
          size += chunk.byteLength;
          yield chunk;
        }
      },
      createWriteStream(file),
      { signal: opts.signal },
    );
    if (!hash.digest().equals(want.digest)) throw new SluiceError('UPLOAD_CHECKSUM_MISMATCH');
  } catch (err) {
    await remove();
    throw err;
  }
  return { size, open: () => createReadStream(file), remove };
}
