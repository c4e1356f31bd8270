// multipart/form-data → an async sequence of file parts, with busboy doing the
// parsing. busboy reports limits by events and truncation rather than by
// throwing; here every limit becomes a coded error that fails the part being
// read and the request. The consumer must read each file's stream to the end
// (or fail) before asking for the next part: that is how backpressure flows
// from storage through busboy to the socket.

import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { SluiceError } from '../errors.ts';
import { byteLimit } from '../core/stages/byte-limit.ts';

export interface MultipartLimits {
  requestBytes: number;
  fileBytes: number;
  files: number;
  fields: number;
  fieldBytes: number;
  parts: number;
  partHeaderPairs: number;
}

export interface FilePart {
  field: string;
  filename: string;
  /** busboy reports "text/plain" for parts without a Content-Type; see declaredPartType. */
  mimeType: string;
  stream: Readable;
  /** Text fields received before this part, in order (later values win). */
  fields: ReadonlyMap<string, string>;
}

export function isMultipart(contentType: string | undefined): boolean {
  return /^multipart\/form-data\s*(;|$)/i.test(contentType ?? '');
}

export async function* multipartFiles(
  req: IncomingMessage,
  limits: MultipartLimits,
  signal: AbortSignal,
): AsyncGenerator<FilePart> {
  let bb: busboy.Busboy;
  try {
    bb = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: {
        fileSize: limits.fileBytes,
        files: limits.files,
        fields: limits.fields,
        fieldSize: limits.fieldBytes,
        parts: limits.parts,
        headerPairs: limits.partHeaderPairs,
      },
    });
  } catch (err) {
    throw new SluiceError('MALFORMED_MULTIPART', { message: `Malformed multipart request: ${(err as Error).message}`, cause: err });
  }

  const pending: FilePart[] = [];
  const fields = new Map<string, string>();
  let current: Readable | undefined;
  let failure: unknown;
  let finished = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const fail = (err: unknown) => {
    failure ??= err;
    current?.destroy(failure as Error);
    for (const p of pending) p.stream.resume();
    notify();
  };

  bb.on('file', (field, stream, info) => {
    // A request that fails (a client gone, a limit) makes busboy destroy the part it is
    // writing with that error, often before any reader iterates it; an unheard 'error'
    // would crash the process. The reader, if any, still gets the error from the stream.
    stream.on('error', () => {});
    stream.once('limit', () => stream.destroy(new SluiceError('FILE_TOO_LARGE', { details: { limitBytes: limits.fileBytes } })));
    if (failure) {
      stream.resume();
      return;
    }
    const part = Readable.from(codedErrors(stream, signal));
    // fail() may destroy a part nobody reads any more; an unheard 'error' would crash the process.
    part.on('error', () => {});
    pending.push({ field, filename: info.filename ?? '', mimeType: info.mimeType, stream: part, fields: new Map(fields) });
    // A bare `sha256` or `path` field describes the one file that follows it, not every later file.
    fields.delete('sha256');
    fields.delete('path');
    notify();
  });
  bb.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) {
      fail(new SluiceError('FIELD_TOO_LARGE', { details: { field: name.slice(0, 100), limitBytes: limits.fieldBytes } }));
      return;
    }
    fields.set(name, value);
  });
  bb.on('filesLimit', () => fail(new SluiceError('TOO_MANY_FILES', { details: { limit: limits.files } })));
  bb.on('fieldsLimit', () => fail(new SluiceError('TOO_MANY_FIELDS', { details: { limit: limits.fields } })));
  bb.on('partsLimit', () => fail(new SluiceError('TOO_MANY_FIELDS', { details: { limit: limits.parts } })));
  bb.on('error', (err: Error) => fail(new SluiceError('MALFORMED_MULTIPART', { message: `Malformed multipart body: ${err.message}`, cause: err })));

  // Reads the request without destroying it on failure, so the error response can still be written.
  const feeding = pipeline(req.iterator({ destroyOnReturn: false }), byteLimit(limits.requestBytes, 'REQUEST_TOO_LARGE'), bb, { signal })
    .then(() => {
      finished = true;
      notify();
    })
    .catch((err: unknown) => {
      fail(signal.aborted ? signal.reason : err instanceof SluiceError ? err : new SluiceError('MALFORMED_MULTIPART', { cause: err }));
    });

  try {
    for (;;) {
      if (failure) throw failure;
      const next = pending.shift();
      if (next) {
        current = next.stream;
        yield next;
        current = undefined;
        continue;
      }
      if (finished) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
    await feeding;
    if (failure) throw failure;
  } finally {
    if (!finished) {
      failure ??= new SluiceError('CLIENT_ABORTED');
      for (const p of pending) p.stream.resume();
      bb.removeAllListeners('file');
      bb.destroy();
    }
  }
}

/** The part's declared type, or undefined when busboy filled in its default. */
export function declaredPartType(part: FilePart): string | undefined {
  // busboy cannot tell "text/plain" sent by the client from its own default; treat both as undeclared.
  return part.mimeType && part.mimeType !== 'text/plain' ? part.mimeType : undefined;
}

/**
 * busboy fails a part's stream with plain Errors ("Unexpected end of form");
 * give them our code so they are answered 400, not mistaken for bugs.
 */
async function* codedErrors(stream: Readable, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk as Uint8Array;
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    if (signal.aborted) throw signal.reason;
    throw new SluiceError('MALFORMED_MULTIPART', { message: `Malformed multipart body: ${(err as Error).message}`, cause: err });
  }
}
