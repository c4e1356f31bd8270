// The checksums an S3 client may send with a body, verified as the bytes
// stream: Content-MD5, x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}
// as a header or (aws-chunked) as the trailer x-amz-trailer names, and a
// signed payload's x-amz-content-sha256. A mismatch throws at the end of the
// stream, before the upload's pipeline lets storage finish, so nothing is
// committed. CRC32 comes from zlib; CRC32C and CRC64NVME from the AWS SDK's
// own implementations (@aws-sdk/checksums), the same code that computed them.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { crc32 } from 'node:zlib';
import { Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { S3Error } from './errors.ts';

const ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
type Algorithm = (typeof ALGORITHMS)[number];

interface Running {
  update(data: Uint8Array): void;
  /** base64 of the digest. */
  digest(): Promise<string>;
}

function running(alg: Algorithm | 'md5'): Running {
  switch (alg) {
    case 'crc32': {
      let v = 0;
      return {
        update: (d) => (v = crc32(d, v)),
        digest: () => {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(v >>> 0);
          return Promise.resolve(b.toString('base64'));
        },
      };
    }
    case 'crc32c':
    case 'crc64nvme': {
      const c = alg === 'crc32c' ? new Crc32c() : new Crc64Nvme();
      return { update: (d) => c.update(d), digest: async () => Buffer.from(await c.digest()).toString('base64') };
    }
    default: {
      const h = createHash(alg);
      return { update: (d) => h.update(d), digest: () => Promise.resolve(h.digest('base64')) };
    }
  }
}

interface Expectation {
  alg: Algorithm | 'md5';
  /** Where the client sent it, for the error message. */
  from: string;
  /** base64; for a trailer, read once the body has ended. */
  value: () => string | undefined;
}

/**
 * A pass-through stage checking every checksum the request carries. `trailers`
 * is read after the source ends (AwsChunkedDecoder fills it by then).
 */
export function checksumStage(headers: IncomingHttpHeaders, trailers?: ReadonlyMap<string, string>): (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Uint8Array> {
  const wants: Expectation[] = [];
  const md5 = one(headers['content-md5']);
  if (md5 !== undefined) {
    if (Buffer.from(md5, 'base64').length !== 16) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
    wants.push({ alg: 'md5', from: 'Content-MD5', value: () => md5 });
  }
  for (const alg of ALGORITHMS) {
    const v = one(headers[`x-amz-checksum-${alg}`]);
    if (v !== undefined) wants.push({ alg, from: `x-amz-checksum-${alg}`, value: () => v });
  }
  const trailer = one(headers['x-amz-trailer'])?.trim().toLowerCase();
  if (trailer !== undefined) {
    const alg = ALGORITHMS.find((a) => trailer === `x-amz-checksum-${a}`);
    if (!alg) throw new S3Error('InvalidRequest', `The trailer ${JSON.stringify(trailer)} is not a supported checksum`);
    if (!trailers) throw new S3Error('InvalidRequest', 'x-amz-trailer needs an aws-chunked body');
    wants.push({ alg, from: trailer, value: () => trailers.get(trailer) });
  }
  return async function* verifyChecksums(source) {
    const sums = wants.map((w) => running(w.alg));
    for await (const chunk of source) {
      for (const s of sums) s.update(chunk);
      yield chunk;
    }
    for (let i = 0; i < wants.length; i++) {
      const w = wants[i]!;
      const given = w.value();
      if (given === undefined) throw new S3Error('InvalidRequest', `The trailer ${w.from} named by x-amz-trailer was not sent`);
      const got = await sums[i]!.digest();
      if (got !== given.trim()) throw new S3Error('BadDigest', `The ${w.from} you specified did not match the calculated checksum.`);
    }
  };
}

/** The x-amz-checksum-sha256 value of a stored file (sluice keeps only the sha256 of each file). */
export function sha256Base64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
