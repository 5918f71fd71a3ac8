// Where a background checkpoint's sealed packs wait on disk while S3 is slower than CRIU's dump, so that the task is not kept frozen for the upload.
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { CHUNK_BUFFER_BYTES, chunkBuffers } from './buffer-pool.ts';

/** A spilled pack, read back when a slot to S3 is free. */
export interface SpilledPack {
  id: string;
  crc32: number;
  bytes: number;
  /**
   * Its bytes, in chunk buffers of the process's pool (the page windows, free again once the task runs on), as
   * the parts of one body; `release` gives them back and deletes the file (never rejects).
   */
  read(): Promise<Buffer[]>;
  release(): Promise<void>;
}

/**
 * Packs as files in one directory, up to `limitBytes` at once. They are the chunks as stored (compressed where
 * that paid), so the spill is as small as the upload. `mostBytes` is the most held at once, for the log.
 */
export class PackSpill {
  readonly dir: string;
  readonly limitBytes: number;
  private readonly queue: Array<{ id: string; crc32: number; bytes: number; file: string }> = [];
  private heldBytes = 0;
  mostBytes = 0;
  spilledPacks = 0;

  private readonly othersHeldBytes: () => number;

  /** `othersHeldBytes`: what the same limit holds elsewhere (the checkpoint's spilled page windows). */
  constructor(dir: string, limitBytes: number, othersHeldBytes: () => number = () => 0) {
    this.dir = dir;
    this.limitBytes = limitBytes;
    this.othersHeldBytes = othersHeldBytes;
  }

  /** Bytes the spilled packs hold now. */
  get held(): number {
    return this.heldBytes;
  }

  get waiting(): number {
    return this.queue.length;
  }

  hasRoomFor(bytes: number): boolean {
    return this.heldBytes + this.othersHeldBytes() + bytes <= this.limitBytes;
  }

  /** Writes a pack whose bytes are `parts` one after the other. */
  async put(id: string, parts: readonly Buffer[], crc32: number): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${id}.pack`);
    const handle = await open(file, 'wx', 0o600);
    let bytes = 0;
    try {
      for (const part of parts) {
        for (let done = 0; done < part.length; ) done += (await handle.write(part, done, part.length - done)).bytesWritten;
        bytes += part.length;
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(file, { force: true }).catch(() => undefined);
      throw error;
    }
    await handle.close();
    this.heldBytes += bytes;
    this.mostBytes = Math.max(this.mostBytes, this.heldBytes);
    this.spilledPacks++;
    this.queue.push({ id, crc32, bytes, file });
  }

  /** The oldest waiting pack, if any. */
  takeNext(): SpilledPack | undefined {
    const next = this.queue.shift();
    if (!next) return undefined;
    const buffers: Buffer[] = [];
    return {
      id: next.id,
      crc32: next.crc32,
      bytes: next.bytes,
      read: async () => {
        const handle = await open(next.file, 'r');
        const parts: Buffer[] = [];
        try {
          for (let at = 0; at < next.bytes; ) {
            const buffer = chunkBuffers.take();
            buffers.push(buffer);
            const part = buffer.subarray(0, Math.min(CHUNK_BUFFER_BYTES, next.bytes - at));
            for (let done = 0; done < part.length; ) {
              const { bytesRead } = await handle.read(part, done, part.length - done, at + done);
              if (bytesRead === 0) throw new Error(`spilled pack ${next.file} ended at ${at + done} of its ${next.bytes} bytes`);
              done += bytesRead;
            }
            parts.push(part);
            at += part.length;
          }
        } finally {
          await handle.close();
        }
        return parts;
      },
      release: async () => {
        for (const buffer of buffers.splice(0)) chunkBuffers.release(buffer);
        this.heldBytes -= next.bytes;
        // A file that cannot be removed is only disk used a while longer: the checkpoint removes its spool dir.
        await rm(next.file, { force: true }).catch(() => undefined);
      },
    };
  }

  /** Deletes whatever is left (after a failure). */
  async discard(): Promise<void> {
    this.queue.length = 0;
    await rm(this.dir, { recursive: true, force: true });
  }
}
