// The sha256 (and UTF-8 check) of a tus upload carried across its PATCHes in
// this process, so finishing needs no second read of the whole file. Node's
// Hash cannot be serialised, so this only helps while one instance sees every
// write of an upload in order: any gap (another instance took a PATCH, a
// restart, a failed write) drops the state and the finish falls back to one
// streaming read-back (adoptStoredOriginal). Both give the same manifest.
//
// Bounds: one Hash (~0.5 KiB) and a TextDecoder per upload in progress here,
// at most MAX_UPLOADS; the oldest is dropped beyond that (it then reads back).

import { createHash, type Hash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { SluiceError } from '../errors.ts';
import type { FileType } from '../core/file-types.ts';

const MAX_UPLOADS = 10_000;

interface Progress {
  /** Offset of the next byte this state expects. */
  next: number;
  hash: Hash;
  type: FileType | undefined;
  utf8: TextDecoder | undefined;
}

export interface CarriedDigest {
  sha256: string;
  size: number;
  type: FileType;
}

export class CarriedDigests {
  readonly #uploads = new Map<string, Progress>();

  /** A fresh state for a write at offset 0. */
  start(id: string): void {
    this.#uploads.delete(id);
    if (this.#uploads.size >= MAX_UPLOADS) this.#uploads.delete(this.#uploads.keys().next().value!);
    this.#uploads.set(id, { next: 0, hash: createHash('sha256'), type: undefined, utf8: undefined });
  }

  /** Record the admitted type (from the first bytes); text must stay valid UTF-8 to the end. */
  setType(id: string, type: FileType, text: boolean): void {
    const p = this.#uploads.get(id);
    if (!p) return;
    p.type = type;
    p.utf8 = text ? new TextDecoder('utf-8', { fatal: true }) : undefined;
  }

  /**
   * Wrap the bytes of a write starting at `offset`. Without a state that ends
   * exactly there, the bytes pass untouched and no state is kept.
   */
  track(id: string, offset: number, source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    const p = this.#uploads.get(id);
    if (!p || p.next !== offset) {
      this.#uploads.delete(id);
      return source;
    }
    // Re-insert: the map's order is then least recently written first.
    this.#uploads.delete(id);
    this.#uploads.set(id, p);
    return (async function* tracked() {
      for await (const chunk of source) {
        p.hash.update(chunk);
        p.next += chunk.byteLength;
        if (p.utf8) {
          try {
            p.utf8.decode(chunk, { stream: true });
          } catch {
            throw new SluiceError('TYPE_NOT_ALLOWED', { message: 'The file is not valid UTF-8 text' });
          }
        }
        yield chunk;
      }
    })();
  }

  /** After a write: keep the state only if the store now holds exactly the bytes hashed. */
  settle(id: string, storedOffset: number | undefined): void {
    const p = this.#uploads.get(id);
    if (p && p.next !== storedOffset) this.#uploads.delete(id);
  }

  drop(id: string): void {
    this.#uploads.delete(id);
  }

  /** The whole file's digest if this process saw every byte of it, in order; removes the state. */
  take(id: string, size: number): CarriedDigest | undefined {
    const p = this.#uploads.get(id);
    this.#uploads.delete(id);
    if (!p || p.next !== size || !p.type) return undefined;
    if (p.utf8) {
      try {
        p.utf8.decode(); // a truncated final sequence is invalid
      } catch {
        throw new SluiceError('TYPE_NOT_ALLOWED', { message: 'The file is not valid UTF-8 text' });
      }
    }
    return { sha256: p.hash.digest('hex'), size, type: p.type };
  }
}
