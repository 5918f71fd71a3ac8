// GET and HEAD of one stored file: a single byte range as S3 reads it, streamed in pieces as the socket takes them.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type http from 'node:http';
import { DISCARDED_MODE, etagOf } from './fast-s3-put.ts';
import { S3StandInError } from './s3-stand-in-xml.ts';

/** Bytes read from the file per socket write: big enough that a syscall per piece is noise, small enough to bound memory. */
const PIECE_BYTES = 1 << 20;
/**
 * Read buffers the socket is done with, for the next pieces: a fresh buffer per piece costs a page fault per
 * 4 KiB on this VM (its freed memory goes back to the host), more than the copy itself.
 */
const spare: Buffer[] = [];
const MAX_SPARE = 64;

function takeBuffer(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(PIECE_BYTES);
}

function giveBack(buffer: Buffer): void {
  if (spare.length < MAX_SPARE) spare.push(buffer);
}

/** One `bytes=` range as [first, last] within `size`; undefined for none, several or a malformed one (S3 ignores those). */
export function parseRange(header: string | undefined, size: number): [number, number] | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const first = match[1]!;
  const last = match[2]!;
  if ((first === '' && last === '') || (first !== '' && last !== '' && Number(last) < Number(first))) return undefined;
  const range: [number, number] =
    first !== '' ? [Number(first), last === '' ? size - 1 : Math.min(Number(last), size - 1)] : [Math.max(size - Number(last), 0), size - 1];
  if (range[0] > range[1] || range[0] >= size) {
    throw new S3StandInError(416, 'InvalidRange', 'The requested range is not satisfiable', { RangeRequested: header, ActualObjectSize: String(size) });
  }
  return range;
}

/**
 * Answers a GET or HEAD of `file`. The file was opened before the answer starts: a PUT that renames a new
 * version over it meanwhile leaves this reader on the old one, whole. Throws NoSuchKey (or what `missing` says)
 * when there is no such file.
 */
export function sendObject(req: http.IncomingMessage, res: http.ServerResponse, file: string, missing: () => S3StandInError): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw missing();
    throw error;
  }
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  try {
    const stats = fstatSync(fd);
    // A HEAD of a dropped object answers as for any other; its bytes cannot be read.
    if ((stats.mode & 0o7777) === DISCARDED_MODE && req.method !== 'HEAD')
      throw new S3StandInError(
        501,
        'NotImplemented',
        'the fast S3 stand-in was started to drop objects over a size (discardOver), and kept none of the bytes of this one; read it from a stand-in that keeps them',
      );
    const range = parseRange(req.headers.range, stats.size);
    const [from, to] = range ?? [0, stats.size - 1];
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('etag', `"${etagOf(stats)}"`);
    res.setHeader('last-modified', stats.mtime.toUTCString());
    res.setHeader('content-type', 'binary/octet-stream');
    res.setHeader('content-length', to - from + 1);
    if (range) {
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${from}-${to}/${stats.size}`);
    }
    if (req.method === 'HEAD' || to < from) {
      close();
      res.end();
      return;
    }
    let position = from;
    const pump = (): void => {
      try {
        while (open && position <= to) {
          const buffer = takeBuffer();
          const read = readSync(fd, buffer, 0, Math.min(PIECE_BYTES, to + 1 - position), position);
          if (read === 0) {
            giveBack(buffer);
            throw new Error(`${file} ended at byte ${position}, before the ${to + 1} bytes its answer announced`);
          }
          position += read;
          // The callback comes once the socket handed the bytes to the kernel (or dropped them): free to reuse.
          if (!res.write(buffer.subarray(0, read), () => giveBack(buffer))) {
            res.once('drain', pump);
            return;
          }
        }
        close();
        res.end();
      } catch (error) {
        close();
        res.destroy(error as Error);
      }
    };
    res.on('close', close);
    pump();
  } catch (error) {
    close();
    throw error;
  }
}
