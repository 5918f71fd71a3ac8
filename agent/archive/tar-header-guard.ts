// Checks each raw tar header before the archive parser sees it, so an oversized metadata header cannot exhaust memory.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
/** Pax and GNU long-name headers are buffered whole by parsers: anything above this is refused. */
export const MAX_METADATA_HEADER_BYTES = 64 * 1024;
const METADATA_TYPES = new Set(['x', 'g', 'L', 'K']);

export class OversizedHeaderError extends Error {
  constructor(type: string, size: number) {
    super(`refusing archive: a "${type}" metadata header of ${size} bytes (at most ${MAX_METADATA_HEADER_BYTES} are allowed)`);
    this.name = 'OversizedHeaderError';
  }
}

/** The entry size a header declares: octal, or base-256 when the first byte's high bit is set. */
export function headerSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (field[0]! & 0x80) {
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** Passes the archive through unchanged, refusing metadata headers larger than the limit. */
export class TarHeaderGuard extends Transform {
  private header = Buffer.alloc(0);
  /** Bytes of entry data (with padding) still to pass before the next header. */
  private skip = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      const n = Math.min(BLOCK - this.header.length, chunk.length - offset);
      this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + n)]);
      offset += n;
      if (this.header.length < BLOCK) break;
      const block = this.header;
      this.header = Buffer.alloc(0);
      if (block.every((b) => b === 0)) continue;
      const type = String.fromCharCode(block[156]!);
      const size = headerSize(block);
      if (!Number.isSafeInteger(size) || size < 0 || (METADATA_TYPES.has(type) && size > MAX_METADATA_HEADER_BYTES)) {
        callback(new OversizedHeaderError(type, size));
        return;
      }
      this.skip = Math.ceil(size / BLOCK) * BLOCK;
    }
    callback(null, chunk);
  }
}
