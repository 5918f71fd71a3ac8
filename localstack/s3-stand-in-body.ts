// The S3 stand-in reads a request body as S3 does: aws-chunked framing undone, every checksum the client sent checked.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import zlib from 'node:zlib';
import { crc32c } from './s3-crc32c.ts';
import { S3StandInError } from './s3-stand-in-xml.ts';

/** The flexible checksums S3 takes, as `x-amz-checksum-<name>` headers or trailers (base64 of the digest). */
export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

function uint32Base64(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

/** The checksum of `data` as S3 writes it in `x-amz-checksum-<algorithm>`. */
export function checksumOf(algorithm: ChecksumAlgorithm, data: Buffer): string {
  switch (algorithm) {
    case 'crc32':
      return uint32Base64(zlib.crc32(data));
    case 'crc32c':
      return uint32Base64(crc32c(data));
    case 'sha1':
    case 'sha256':
      return createHash(algorithm).update(data).digest('base64');
  }
}

/** A received body and the checksums it was sent with (checked), by algorithm. */
export interface ReceivedBody {
  data: Buffer;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of req) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/** Undoes `aws-chunked` framing (`<hex size>[;chunk-signature=...]\r\n<data>\r\n`, then trailers); returns data and trailers. */
export function decodeAwsChunked(framed: Buffer): { data: Buffer; trailers: Record<string, string> } {
  const pieces: Buffer[] = [];
  let at = 0;
  const line = (): string => {
    const end = framed.indexOf('\r\n', at);
    if (end < 0) throw new S3StandInError(400, 'IncompleteBody', `the aws-chunked body ends inside a line at byte ${at}`);
    const text = framed.subarray(at, end).toString('latin1');
    at = end + 2;
    return text;
  };
  for (;;) {
    const header = line();
    const size = Number.parseInt(header.split(';')[0]!.trim(), 16);
    if (!Number.isSafeInteger(size) || size < 0)
      throw new S3StandInError(400, 'InvalidRequest', `bad aws-chunked chunk size ${JSON.stringify(header.slice(0, 40))}`);
    if (size === 0) break;
    if (at + size + 2 > framed.length) throw new S3StandInError(400, 'IncompleteBody', `an aws-chunked chunk of ${size} bytes is cut short`);
    pieces.push(framed.subarray(at, at + size));
    at += size;
    if (line() !== '') throw new S3StandInError(400, 'InvalidRequest', 'an aws-chunked chunk is longer than its size');
  }
  const trailers: Record<string, string> = {};
  while (at < framed.length) {
    const trailer = line();
    if (trailer === '') break;
    const colon = trailer.indexOf(':');
    if (colon > 0) trailers[trailer.slice(0, colon).trim().toLowerCase()] = trailer.slice(colon + 1).trim();
  }
  return { data: Buffer.concat(pieces), trailers };
}

/**
 * Reads the whole body of `req`, undoes aws-chunked framing, and checks what the client claims of it: the
 * `x-amz-checksum-*` headers or trailers (BadDigest), Content-MD5 (BadDigest), a hex `x-amz-content-sha256`
 * (XAmzContentSHA256Mismatch) and `x-amz-decoded-content-length` (IncompleteBody).
 */
export async function receiveBody(req: http.IncomingMessage): Promise<ReceivedBody> {
  const raw = await readAll(req);
  const contentSha256 = String(req.headers['x-amz-content-sha256'] ?? '');
  const chunked = contentSha256.startsWith('STREAMING-') || /\baws-chunked\b/.test(String(req.headers['content-encoding'] ?? ''));
  const { data, trailers } = chunked ? decodeAwsChunked(raw) : { data: raw, trailers: {} as Record<string, string> };
  const decodedLength = req.headers['x-amz-decoded-content-length'];
  if (chunked && decodedLength !== undefined && Number(decodedLength) !== data.length) {
    throw new S3StandInError(400, 'IncompleteBody', `x-amz-decoded-content-length says ${String(decodedLength)} bytes; the body decoded to ${data.length}`);
  }
  if (/^[0-9a-f]{64}$/.test(contentSha256) && createHash('sha256').update(data).digest('hex') !== contentSha256) {
    throw new S3StandInError(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }
  const md5 = req.headers['content-md5'];
  if (typeof md5 === 'string' && createHash('md5').update(data).digest('base64') !== md5) {
    throw new S3StandInError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  const checksums: ReceivedBody['checksums'] = {};
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const name = `x-amz-checksum-${algorithm}`;
    const claimed = trailers[name] ?? req.headers[name];
    if (typeof claimed !== 'string') continue;
    const actual = checksumOf(algorithm, data);
    if (Buffer.from(claimed, 'base64').length !== Buffer.from(actual, 'base64').length) {
      throw new S3StandInError(400, 'InvalidRequest', `Value for ${name} header is invalid: ${JSON.stringify(claimed)}`);
    }
    if (claimed !== actual) {
      throw new S3StandInError(
        400,
        'BadDigest',
        `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum (${name}: ${claimed}, calculated ${actual}).`,
      );
    }
    checksums[algorithm] = actual;
  }
  for (const name of [...Object.keys(trailers), ...Object.keys(req.headers)]) {
    if (
      name.startsWith('x-amz-checksum-') &&
      name !== 'x-amz-checksum-mode' &&
      name !== 'x-amz-checksum-type' &&
      !(CHECKSUM_ALGORITHMS as readonly string[]).includes(name.slice(15))
    ) {
      throw new S3StandInError(501, 'NotImplemented', `the S3 stand-in does not check ${name}; send one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
    }
  }
  return { data, checksums };
}
