// Undoes aws-chunked framing as a body streams in (`<hex size>[;ext]\r\n<data>\r\n` ... `0\r\n<trailers>\r\n\r\n`), without buffering it.
import { S3StandInError } from './s3-stand-in-xml.ts';

/** A chunk header or trailer line longer than this is not aws-chunked framing. */
const MAX_LINE = 8192;

/**
 * Feeds pieces of an aws-chunked body; the data inside goes to `onData` as views of the pieces (valid during
 * the call), the trailers are kept. `end()` throws IncompleteBody unless the framing ended.
 */
export class AwsChunkedDecoder {
  readonly trailers: Record<string, string> = {};
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private line = '';
  private remaining = 0;
  private decoded = 0;
  private readonly onData: (data: Buffer) => void;

  constructor(onData: (data: Buffer) => void) {
    this.onData = onData;
  }

  /** Bytes of data decoded so far. */
  get bytes(): number {
    return this.decoded;
  }

  feed(piece: Buffer): void {
    let at = 0;
    while (at < piece.length) {
      if (this.state === 'done') throw new S3StandInError(400, 'InvalidRequest', 'the aws-chunked body goes on after its final chunk and trailers');
      if (this.state === 'data') {
        const take = Math.min(this.remaining, piece.length - at);
        this.onData(piece.subarray(at, at + take));
        this.decoded += take;
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const newline = piece.indexOf(0x0a, at);
      const end = newline < 0 ? piece.length : newline;
      this.line += piece.toString('latin1', at, end);
      at = end;
      if (this.line.length > MAX_LINE) throw new S3StandInError(400, 'InvalidRequest', `an aws-chunked line is over ${MAX_LINE} bytes`);
      if (newline < 0) continue;
      at += 1;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      this.endLine(line);
    }
  }

  private endLine(line: string): void {
    if (this.state === 'data-end') {
      if (line !== '') throw new S3StandInError(400, 'InvalidRequest', 'an aws-chunked chunk is longer than its size');
      this.state = 'size';
    } else if (this.state === 'size') {
      const sizeText = line.split(';')[0]!.trim();
      const size = /^[0-9a-fA-F]+$/.test(sizeText) ? Number.parseInt(sizeText, 16) : Number.NaN;
      if (!Number.isSafeInteger(size)) throw new S3StandInError(400, 'InvalidRequest', `bad aws-chunked chunk size ${JSON.stringify(line.slice(0, 40))}`);
      if (size === 0) this.state = 'trailer';
      else {
        this.remaining = size;
        this.state = 'data';
      }
    } else if (line === '') {
      this.state = 'done';
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }

  /** The body ended: throws unless the final chunk came (its trailers' blank line may be missing, as some clients send). */
  end(): void {
    if (this.state === 'done' || (this.state === 'trailer' && this.line === '')) return;
    throw new S3StandInError(400, 'IncompleteBody', `the aws-chunked body ended inside a chunk, after ${this.decoded} bytes of data`);
  }
}
