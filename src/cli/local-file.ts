// Reading local files for upload: whole (small files, one read), hashed
// ahead of sending, or streamed with the hash computed in the same pass.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** Chunk size for reading files: large enough to keep syscalls few, small enough to keep RSS flat. */
export const READ_CHUNK = 256 * 1024;

export async function sha256File(path: string, signal?: AbortSignal, end?: number): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  if (end === 0) return { sha256: hash.digest('hex'), size };
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK, ...(signal ? { signal } : {}), ...(end === undefined ? {} : { end: end - 1 }) });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * The first `size` bytes of a file as a stream, feeding `hash` (when given)
 * and reporting progress as chunks are read. Never more than `size` bytes: a
 * file that grew is caught by the mtime check after the upload; one that
 * shrank makes the request body short, which undici refuses.
 */
export function fileBody(path: string, size: number, opts: { hash?: Hash; onBytes: (n: number) => void; signal?: AbortSignal }): Readable {
  const source = createReadStream(path, { start: 0, end: size - 1, highWaterMark: READ_CHUNK, ...(opts.signal ? { signal: opts.signal } : {}) });
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      opts.hash?.update(chunk);
      opts.onBytes(chunk.byteLength);
      yield chunk;
    }
  }
  return Readable.from(counted(), { objectMode: false, highWaterMark: READ_CHUNK });
}

/** A declared type for text formats whose stored type follows the declaration; everything else is sniffed by the server. */
const TEXT_TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.md': 'text/markdown',
  '.tsv': 'text/tab-separated-values',
  '.ndjson': 'application/x-ndjson',
};

export function declaredType(name: string): string {
  const dot = name.lastIndexOf('.');
  return (dot >= 0 ? TEXT_TYPES[name.slice(dot).toLowerCase()] : undefined) ?? 'application/octet-stream';
}
