// A PUT's body streams into a temporary file beside its key's, checked as it comes, then takes the key's name in one rename.
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, ftruncateSync, linkSync, openSync, renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { AwsChunkedDecoder } from './fast-s3-aws-chunked.ts';
import { BodyDigests } from './fast-s3-digests.ts';
import { S3StandInError } from './s3-stand-in-xml.ts';

/** What a stored PUT answers with. */
export interface PutResult {
  etag: string;
  /** The flexible checksums the request claimed, checked, by header name. */
  checksums: Record<string, string>;
  bytes: number;
}

let temporaries = 0;

/**
 * The mode of an object whose bytes a stand-in started with `discardOver` dropped: its file has the object's
 * size but holds none of it (sparse), and the sticky bit, meaningless on a file, tells a GET so.
 */
export const DISCARDED_MODE = 0o1444;

/** The body's length as the request announces it (the decoded length of an aws-chunked one), if it does. */
function announcedLength(headers: http.IncomingHttpHeaders): number | undefined {
  const text = headers['x-amz-decoded-content-length'] ?? headers['content-length'];
  const length = Number(text);
  return typeof text === 'string' && Number.isSafeInteger(length) ? length : undefined;
}

/** An object's ETag: not its MD5 (that would cost a hash of every byte), but the same for every reader of one stored version. */
export function etagOf(stats: Stats): string {
  return createHash('md5').update(`${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`).digest('hex');
}

/** How the bytes of `req` are framed: plainly, or as aws-chunked (with `x-amz-decoded-content-length` data bytes). */
function isAwsChunked(headers: http.IncomingHttpHeaders): boolean {
  return String(headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-') || /\baws-chunked\b/.test(String(headers['content-encoding'] ?? ''));
}

/**
 * Receives the body of `req` into `bucketDir/fileName`. The bytes go to a dot file of the same directory as
 * they arrive (written at once: on tmpfs a write is a copy, cheaper than a hop to the thread pool); only a body
 * whose claimed checksums hold is renamed over the key's file, so a concurrent GET reads the old object or the
 * new one, never part of either. With `ifNoneMatch` (`If-None-Match: *`) the rename is a hard link that fails
 * when the key exists, which makes the create-if-absent atomic across the stand-in's processes too. A body
 * longer than `discardOver` bytes is checked the same way but not kept: its file gets the size and
 * DISCARDED_MODE, and no byte of it is written where the request announced its length (at most `discardOver`
 * of them where it did not, before the body passed that size).
 */
export function receiveObject(
  req: http.IncomingMessage,
  bucketDir: string,
  fileName: string,
  ifNoneMatch: boolean,
  discardOver = Number.POSITIVE_INFINITY,
): Promise<PutResult> {
  return new Promise<PutResult>((resolve, reject) => {
    const digests = new BodyDigests(req.headers);
    let discard = (announcedLength(req.headers) ?? 0) > discardOver;
    const temporary = path.join(bucketDir, `.put-${process.pid}-${++temporaries}`);
    let fd: number | undefined;
    try {
      fd = openSync(temporary, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new S3StandInError(404, 'NoSuchBucket', 'The specified bucket does not exist');
      throw error;
    }
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      try {
        unlinkSync(temporary);
      } catch {
        // Already gone.
      }
      reject(error);
    };
    let written = 0;
    const write = (data: Buffer): void => {
      digests.update(data);
      if (written + data.length > discardOver) discard = true;
      if (!discard) for (let at = 0; at < data.length; ) at += writeSync(fd!, data, at, data.length - at, written + at);
      written += data.length;
    };
    const decoder = isAwsChunked(req.headers) ? new AwsChunkedDecoder(write) : undefined;
    req.on('data', (piece: Buffer) => {
      if (settled) return;
      try {
        if (decoder) decoder.feed(piece);
        else write(piece);
      } catch (error) {
        fail(error);
      }
    });
    req.on('error', fail);
    req.on('close', () => {
      if (!req.complete) fail(new S3StandInError(400, 'IncompleteBody', `the request body ended after ${written} bytes, before the length it announced`));
    });
    req.on('end', () => {
      if (settled) return;
      try {
        decoder?.end();
        const decodedLength = req.headers['x-amz-decoded-content-length'];
        if (decoder && decodedLength !== undefined && Number(decodedLength) !== written) {
          throw new S3StandInError(400, 'IncompleteBody', `x-amz-decoded-content-length says ${String(decodedLength)} bytes; the body decoded to ${written}`);
        }
        const checksums = digests.verify(decoder?.trailers ?? {});
        if (discard) {
          ftruncateSync(fd!, written);
          fchmodSync(fd!, DISCARDED_MODE);
        }
        const etag = etagOf(fstatSync(fd!));
        closeSync(fd!);
        fd = undefined;
        const target = path.join(bucketDir, fileName);
        if (ifNoneMatch) {
          try {
            linkSync(temporary, target);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
            throw new S3StandInError(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
              Condition: 'If-None-Match',
            });
          }
          unlinkSync(temporary);
        } else renameSync(temporary, target);
        settled = true;
        resolve({ etag, checksums, bytes: written });
      } catch (error) {
        fail(error);
      }
    });
  });
}
