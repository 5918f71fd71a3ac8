// The checksums a PUT claims, computed piece by piece as its body streams to disk, then compared as S3 compares them.
import { createHash, type Hash } from 'node:crypto';
import type http from 'node:http';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { crc32c } from './s3-crc32c.ts';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from './s3-stand-in-body.ts';
import { S3StandInError } from './s3-stand-in-xml.ts';

/** One running checksum: fed the body's pieces, then its final value as S3 writes it (base64, or hex for the content SHA-256). */
interface Running {
  update(piece: Buffer): void;
  digest(): string;
}

function runningCrc(update: (piece: Buffer, crc: number) => number): Running {
  let crc = 0;
  return {
    update: (piece) => {
      crc = update(piece, crc);
    },
    digest: () => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(crc >>> 0);
      return bytes.toString('base64');
    },
  };
}

function runningHash(algorithm: string, encoding: 'base64' | 'hex'): Running {
  const hash: Hash = createHash(algorithm);
  return { update: (piece) => hash.update(piece), digest: () => hash.digest(encoding) };
}

/**
 * CRC-32 continued over one more piece: the native binding's where it is installed (the same value as zlib's,
 * twice as fast), so that checking a pack takes less of the cores the stand-in shares with the agent it measures.
 */
const continueCrc32: (piece: Buffer, crc: number) => number = (() => {
  try {
    const { crc32 } = createRequire(import.meta.url)('@node-rs/crc32') as { crc32(input: Uint8Array, initial?: number): number };
    return (piece: Buffer, crc: number) => crc32(piece, crc);
  } catch {
    return (piece: Buffer, crc: number) => zlib.crc32(piece, crc);
  }
})();

function running(algorithm: ChecksumAlgorithm): Running {
  if (algorithm === 'crc32') return runningCrc(continueCrc32);
  if (algorithm === 'crc32c') return runningCrc(crc32c);
  return runningHash(algorithm, 'base64');
}

/**
 * The checks a PUT's headers ask for: `x-amz-checksum-*` (here or, with `x-amz-trailer`, after an aws-chunked
 * body), Content-MD5, and a hex `x-amz-content-sha256` (a signed payload). Only what the request claims is
 * computed: an unsigned pack PUT with its CRC-32 costs one CRC over its bytes.
 */
export class BodyDigests {
  private readonly checks = new Map<string, Running>();
  private readonly claims = new Map<string, string | undefined>();

  constructor(headers: http.IncomingHttpHeaders) {
    const trailerNames = String(headers['x-amz-trailer'] ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean);
    for (const name of [...Object.keys(headers), ...trailerNames]) {
      if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-mode' || name === 'x-amz-checksum-type') continue;
      const algorithm = name.slice('x-amz-checksum-'.length);
      if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
        throw new S3StandInError(501, 'NotImplemented', `the fast S3 stand-in does not check ${name}; send one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
      }
      const claimed = headers[name];
      this.claims.set(name, typeof claimed === 'string' ? claimed : undefined);
      if (!this.checks.has(name)) this.checks.set(name, running(algorithm as ChecksumAlgorithm));
    }
    const md5 = headers['content-md5'];
    if (typeof md5 === 'string') {
      this.claims.set('content-md5', md5);
      this.checks.set('content-md5', runningHash('md5', 'base64'));
    }
    const contentSha256 = String(headers['x-amz-content-sha256'] ?? '');
    if (/^[0-9a-f]{64}$/.test(contentSha256)) {
      this.claims.set('x-amz-content-sha256', contentSha256);
      this.checks.set('x-amz-content-sha256', runningHash('sha256', 'hex'));
    }
  }

  update(piece: Buffer): void {
    for (const check of this.checks.values()) check.update(piece);
  }

  /**
   * Throws the error S3 answers unless every claim holds (`trailers` may bring the values announced by
   * `x-amz-trailer`); returns the flexible checksums, by header name, to echo in the answer.
   */
  verify(trailers: Record<string, string>): Record<string, string> {
    const echoed: Record<string, string> = {};
    for (const [name, check] of this.checks) {
      const claimed = trailers[name] ?? this.claims.get(name);
      const actual = check.digest();
      if (claimed === undefined) throw new S3StandInError(400, 'InvalidRequest', `x-amz-trailer announced ${name}, but the body brought no such trailer`);
      if (name === 'x-amz-content-sha256') {
        if (claimed !== actual)
          throw new S3StandInError(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
            ClientComputedContentSHA256: claimed,
            S3ComputedContentSHA256: actual,
          });
        continue;
      }
      if (Buffer.from(claimed, 'base64').length !== Buffer.from(actual, 'base64').length) {
        throw new S3StandInError(400, 'InvalidRequest', `Value for ${name} header is invalid: ${JSON.stringify(claimed)}`);
      }
      if (claimed !== actual) {
        const what = name === 'content-md5' ? 'Content-MD5' : name.slice('x-amz-checksum-'.length).toUpperCase();
        throw new S3StandInError(
          400,
          'BadDigest',
          `The ${what} you specified did not match the calculated checksum (${name}: ${claimed}, calculated ${actual}).`,
        );
      }
      if (name !== 'content-md5') echoed[name] = actual;
    }
    return echoed;
  }
}
