// S3 errors → coded errors, without importing the AWS SDK: the tus and
// resumable paths translate what their stores throw, and an fs node must not
// load the SDK for that (docs/performance.md, "Idle memory").

import type { S3ServiceException } from '@aws-sdk/client-s3';
import { SluiceError, isSluiceError } from '../errors.ts';

export function errName(err: unknown): string | undefined {
  return (err as { name?: string; Code?: string } | null)?.name;
}

/** SDK and network errors → coded errors. Anything not "not found" means storage is unusable for now. */
export function translate(err: unknown): unknown {
  if (isSluiceError(err)) return err;
  const name = errName(err);
  const status = (err as Partial<S3ServiceException> | null)?.$metadata?.httpStatusCode;
  if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
    return new SluiceError('FILE_NOT_FOUND', { cause: err });
  }
  return new SluiceError('STORAGE_UNAVAILABLE', { cause: err });
}
