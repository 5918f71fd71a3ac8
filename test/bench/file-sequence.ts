// Several files read as one run of bytes, in their order: a dump's images as the plain limits send them, with no copy of them made first.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

interface Part {
  path: string;
  fd: number;
  /** Where the file's first byte is in the sequence. */
  start: number;
  bytes: number;
}

/** The files' bytes one after the other, read at any position; open until close(). A file named twice is opened once. */
export class FileSequence {
  readonly bytes: number;
  private readonly parts: Part[] = [];
  private readonly open = new Map<string, number>();

  constructor(paths: readonly string[]) {
    if (paths.length === 0) throw new Error('file sequence: no file was named; name at least one');
    let start = 0;
    try {
      for (const path of paths) {
        let fd = this.open.get(path);
        if (fd === undefined) {
          fd = openSync(path, 'r');
          this.open.set(path, fd);
        }
        const bytes = fstatSync(fd).size;
        this.parts.push({ path, fd, start, bytes });
        start += bytes;
      }
    } catch (error) {
      this.close();
      throw error;
    }
    this.bytes = start;
  }

  /** Fills `buffer[0, length)` with the sequence's bytes from `position`; throws, naming the file, if they end sooner. */
  read(buffer: Buffer, length: number, position: number): void {
    if (position < 0 || length < 0 || position + length > this.bytes)
      throw new RangeError(`file sequence: bytes ${position}-${position + length - 1} are outside its ${this.bytes} bytes`);
    for (let at = 0; at < length; ) {
      const where = position + at;
      const part = this.parts.find((p) => where >= p.start && where < p.start + p.bytes)!;
      const read = readSync(part.fd, buffer, at, Math.min(length - at, part.start + part.bytes - where), where - part.start);
      if (read === 0) throw new Error(`file sequence: ${part.path} ended at byte ${where - part.start}, before the ${part.bytes} it had when opened`);
      at += read;
    }
  }

  close(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
    this.parts.length = 0;
  }
}
