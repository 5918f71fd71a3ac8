// Reads an HTTP/1.1 response head and decodes how its body ends (a length, chunked, or the connection's close).

/** A network-level failure, named by the code the SDK's retry strategy treats as transient. */
export function transientError(message: string, code: 'ECONNRESET' | 'ETIMEDOUT'): Error {
  return Object.assign(new Error(message), { code });
}

/** How a response body ends (RFC 9112, section 6.3). */
export type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

/** Decodes `Transfer-Encoding: chunked` incrementally; passes data on, says when the last chunk and trailers ended. */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private remaining = 0;

  /** Feeds bytes; returns how many it consumed (all of them unless the body ended inside `piece`). */
  feed(piece: Buffer, onData: (data: Buffer) => void): { consumed: number; ended: boolean } {
    let at = 0;
    while (at < piece.length) {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, piece.length - at);
        onData(piece.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const byte = piece[at++]!;
      if (byte !== 0x0a) {
        if (byte !== 0x0d) this.line += String.fromCharCode(byte);
        if (this.line.length > 4096) throw transientError('the S3 endpoint sent a chunk header line over 4 KiB', 'ECONNRESET');
        continue;
      }
      const line = this.line;
      this.line = '';
      if (this.state === 'data-end') {
        if (line !== '') throw transientError('the S3 endpoint sent chunk data longer than its size', 'ECONNRESET');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
        if (!Number.isSafeInteger(size) || size < 0) throw transientError(`the S3 endpoint sent a bad chunk size ${JSON.stringify(line)}`, 'ECONNRESET');
        if (size === 0) this.state = 'trailer';
        else {
          this.remaining = size;
          this.state = 'data';
        }
      } else if (line === '') {
        return { consumed: at, ended: true };
      }
    }
    return { consumed: at, ended: false };
  }
}

/** A response's status line and headers (names lower-cased, repeated ones joined with ", "). */
export interface ParsedHead {
  statusCode: number;
  reason: string;
  headers: Record<string, string>;
}

/** Parses a response head (the text before the blank line); a bad status line is a transient error. */
export function parseHead(text: string): ParsedHead {
  const [statusLine, ...lines] = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine ?? '');
  if (!status)
    throw transientError(`the S3 endpoint answered with ${JSON.stringify((statusLine ?? '').slice(0, 80))}, not an HTTP/1.1 status line`, 'ECONNRESET');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { statusCode: Number(status[1]), reason: status[2] ?? '', headers };
}

/** How the body of the answer to `method` with this head ends. */
export function framingOf(head: ParsedHead, method: string): Framing {
  if (method === 'HEAD' || head.statusCode === 204 || head.statusCode === 304) return { kind: 'length', remaining: 0 };
  if (/(^|,)\s*chunked\s*$/i.test(head.headers['transfer-encoding'] ?? '')) return { kind: 'chunked' };
  const length = head.headers['content-length'];
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isSafeInteger(n) || n < 0) throw transientError(`the S3 endpoint sent Content-Length ${JSON.stringify(length)}`, 'ECONNRESET');
    return { kind: 'length', remaining: n };
  }
  return { kind: 'close' };
}
