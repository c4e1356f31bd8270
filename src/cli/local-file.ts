// Reading local files for upload without churning memory.
//
// Allocating a fresh buffer per chunk (what fs streams and readFile do) is
// cheap in time but not in RSS: V8 frees Buffers only at its next GC, which it
// delays until some 64 MB of them are garbage, so a batch of large files
// would hold ~64 MB of dead chunks on top of the live ones. Here each upload
// reads into a few buffers it reuses:
//
// - whole small files into a buffer from a pool (one per worker);
// - hashing passes through one buffer per pass;
// - streamed bodies through a ring of RING_SIZE chunks handed to undici as an
//   async iterable. undici pulls the next chunk only after socket.write()
//   returned true (the chunk is at most a sub-highWaterMark tail away from
//   flushed) or after 'drain' (everything flushed), so by the time a ring
//   slot comes round again its bytes are on the wire. Should that ever fail,
//   the end-to-end sha256 check (Content-Digest or the answer's sha256)
//   refuses the upload; it can never be stored wrong.
//
// Memory bound per upload in flight: RING_SIZE × READ_CHUNK (768 KiB), plus
// one bufferMax buffer per worker for whole-read files.

import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Chunk size for reading files: large enough to keep syscalls few, small enough to keep RSS flat. */
export const READ_CHUNK = 256 * 1024;
const RING_SIZE = 3;

export class FileShrank extends Error {
  override name = 'FileShrank';
}

/** sha256 of the first `end` bytes (the whole file when undefined). */
export async function sha256File(path: string, signal?: AbortSignal, end = Infinity): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  const fh = await open(path, 'r');
  let size = 0;
  try {
    while (size < end) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - size), size);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/** Reusable buffers of `size` bytes; at most `keep` are kept for reuse. */
export class BufferPool {
  readonly size: number;
  readonly #free: Buffer[] = [];
  readonly #keep: number;

  constructor(size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /** Give a buffer back only when nothing else can still read it. */
  give(buf: Buffer): void {
    if (this.#free.length < this.#keep) this.#free.push(buf);
  }
}

/** Reads a whole file of `size` bytes (≤ the pool's size) into a pooled buffer. */
export async function readWhole(path: string, size: number, pool: BufferPool): Promise<{ buf: Buffer; data: Buffer }> {
  const buf = pool.take();
  try {
    await readInto(path, size, buf, 0);
  } catch (err) {
    pool.give(buf);
    throw err;
  }
  return { buf, data: buf.subarray(0, size) };
}

const ONE_BYTE = Buffer.alloc(1);

/** Reads a whole file of exactly `size` bytes into `target` at `offset`; FileShrank if it is shorter or longer. */
export async function readInto(path: string, size: number, target: Buffer, offset: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(target, offset + pos, size - pos, pos);
      if (bytesRead === 0) throw new FileShrank();
      pos += bytesRead;
    }
    // One more byte would mean the file grew since it was stat'ed.
    const { bytesRead } = await fh.read(ONE_BYTE, 0, 1, size);
    if (bytesRead !== 0) throw new FileShrank('the file grew');
  } finally {
    await fh.close();
  }
  return target.subarray(offset, offset + size);
}

/**
 * The first `size` bytes of a file as chunks from a ring of reused buffers,
 * feeding `hash` (when given) and reporting progress as they are read.
 * Throws FileShrank if the file ends early; a file that grew is caught by
 * the mtime check after the upload.
 */
export async function* fileChunks(path: string, size: number, opts: { hash?: Hash; onBytes: (n: number) => void; signal?: AbortSignal }): AsyncGenerator<Buffer> {
  const ring = Array.from({ length: RING_SIZE }, () => Buffer.allocUnsafe(READ_CHUNK));
  const fh = await open(path, 'r');
  try {
    let pos = 0;
    for (let i = 0; pos < size; i = (i + 1) % RING_SIZE) {
      opts.signal?.throwIfAborted();
      const buf = ring[i]!;
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) throw new FileShrank();
      const chunk = buf.subarray(0, bytesRead);
      opts.hash?.update(chunk);
      opts.onBytes(bytesRead);
      pos += bytesRead;
      yield chunk;
    }
  } finally {
    await fh.close();
  }
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
