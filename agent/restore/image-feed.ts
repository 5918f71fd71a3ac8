// Streams an image's bytes in order for CRIU's streamed restore: from its chunks in S3 (ranged reads ahead, each chunk checked before a byte of it goes on), or from a file.
import { open } from 'node:fs/promises';
import { PipeClosedError, type ImageFeed } from '../../criu-bridge/image-stream-server.ts';
import { storedLength, type ImageFile } from '../store/manifest.ts';
import { ChecksumMismatchError } from '../store/snapshot-store.ts';
import { CHUNK_BUFFER_BYTES } from '../transfer/buffer-pool.ts';
import { sharedChunkWorkers, type ChunkWorkers } from '../transfer/chunk-workers.ts';
import { GatherBuffers, RangeWriter, type ChunkSource, type PackRange } from './chunk-downloader.ts';

/**
 * The most one ranged read of a streamed image takes. Reads run this far ahead of what the pipe has taken, so
 * a stream holds some `readsAhead` times this in memory, whatever the image's size.
 */
export const STREAM_RANGE_BYTES = 4 << 20;

/**
 * The reads of one image in its own order: chunks that lie back to back in a pack are read together, up to
 * `maxBytes` a read. Unlike a download's plan, a chunk that recurs (memory that holds the same megabyte twice)
 * is read again where it recurs: a pipe takes bytes only in order.
 */
export function planImageRanges(image: ImageFile, maxBytes = STREAM_RANGE_BYTES): PackRange[] {
  const ranges: PackRange[] = [];
  let offset = 0;
  for (const ref of image.chunks) {
    const last = ranges.at(-1);
    const bytes = storedLength(ref);
    const entry = { ref, destinations: [{ image: 0, offset }] };
    if (last && last.pack === ref.pack && last.offset + last.bytes === ref.offset && last.bytes + bytes <= maxBytes) {
      last.bytes += bytes;
      last.chunks.push(entry);
    } else {
      ranges.push({ pack: ref.pack, offset: ref.offset, bytes, chunks: [entry] });
    }
    offset += ref.bytes;
  }
  return ranges;
}

interface Decoded {
  raw: Buffer;
  stored: Buffer;
}

/** A promise settled from outside, observed so that one settled before its turn is not an unhandled rejection. */
class Slot {
  resolve!: (value: Decoded | Promise<Decoded>) => void;
  reject!: (error: unknown) => void;
  /** Its chunk was written (or its write attempted): its buffer is back in the pool. */
  consumed = false;
  readonly promise = new Promise<Decoded>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
  constructor() {
    this.promise.catch(() => undefined);
  }
}

/** One ranged read under way: a slot per chunk, settled once that chunk passed its check (or failed). */
interface RangeInFlight {
  slots: Slot[];
  read: Promise<void>;
  /** Whether it counts against the restore's shared reads ahead (every read of a feed but its first). */
  shared: boolean;
}

/**
 * The reads ahead that every image a restore streams at once shares (CRIU restores sibling processes, each with
 * its pages, side by side): a feed always keeps one read of its own, so that none waits on another, and takes
 * more only while these have room. A restore holds at most (feeds + limit) ranges in memory, not feeds x limit.
 */
export class SharedReads {
  private out = 0;
  /** The most that were taken at once, for the tests. */
  mostOut = 0;

  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
    if (!Number.isInteger(limit) || limit < 0) throw new Error(`a restore's shared reads ahead must be a whole number >= 0, not ${limit}`);
  }

  /** Takes one if there is room. */
  tryTake(): boolean {
    if (this.out >= this.limit) return false;
    this.out++;
    this.mostOut = Math.max(this.mostOut, this.out);
    return true;
  }

  give(): void {
    this.out = Math.max(0, this.out - 1);
  }
}

export interface ChunkFeedOptions {
  /** Ranged reads kept ahead of the pipe, at most. */
  readsAhead: number;
  /** Reads ahead shared with the restore's other streamed images: past its first, a feed takes each from these. */
  shared?: SharedReads;
  workers?: ChunkWorkers;
  /** Called with each chunk's raw bytes once the pipe took them. */
  onBytes?: (bytes: number) => void;
}

/**
 * Feeds `image` from its chunks: `readsAhead` ranged reads at a time, each chunk decompressed and checked
 * against its digest on a worker thread, and written to the pipe in order once it passed. A chunk that fails its
 * check, or a read that fails for good, ends the feed before a byte of it is written.
 */
export function chunkImageFeed(store: Pick<ChunkSource, 'readPackRange'>, image: ImageFile, options: ChunkFeedOptions): ImageFeed {
  const { readsAhead, workers = sharedChunkWorkers(), onBytes = () => undefined } = options;
  if (!Number.isInteger(readsAhead) || readsAhead < 1) throw new Error(`a streamed image needs at least one read ahead, not ${readsAhead}`);
  const shared = options.shared ?? new SharedReads(readsAhead - 1);
  return async (write, stopped) => {
    const ranges = planImageRanges(image);
    // Once the server stops, no read more starts and the one waited for is waited for no longer.
    const noLongerRead = () => new PipeClosedError(`the restore no longer reads image ${image.name}`);
    let stop = (): void => undefined;
    const abandoned = new Promise<never>((_, reject) => {
      stop = () => reject(noLongerRead());
      if (stopped.aborted) stop();
      else stopped.addEventListener('abort', stop, { once: true });
    });
    abandoned.catch(() => undefined);
    // The reads ahead bound what is held, not the buffers: a range gathers every chunk it holds, so that the
    // range the pipe waits for never waits for a buffer that a later range holds.
    const buffers = new GatherBuffers(Number.MAX_SAFE_INTEGER);
    const start = (range: PackRange, isShared: boolean): RangeInFlight => {
      const slots = range.chunks.map(() => new Slot());
      let handed = 0;
      const writer = new RangeWriter(range, buffers, (ref, _destinations, stored, where) => {
        const decoded = workers.decodeTransferred(stored, ref.encoding ?? 'raw', ref.bytes, ref.digest, where).catch((error: unknown) => {
          buffers.forget();
          throw ChecksumMismatchError.fromWorker(error instanceof Error ? error.message : String(error));
        });
        slots[handed++]!.resolve(decoded);
        return decoded.then(() => ref.bytes);
      });
      const read = store.readPackRange(range.pack, range.offset, range.bytes, writer).then(
        () => {
          for (const slot of slots.slice(handed)) slot.reject(new Error(`pack ${range.pack} bytes ${range.offset}+${range.bytes} ended before its chunks did`));
        },
        (error: unknown) => {
          writer.abandon();
          for (const slot of slots.slice(handed)) slot.reject(error);
          throw error;
        },
      );
      read.catch(() => undefined); // judged when its turn comes
      return { slots, read, shared: isShared };
    };
    /** A read that counted against the shared ones gives its place back once it is over. */
    const settled = (range: RangeInFlight): void => {
      if (range.shared)
        void range.read.then(
          () => shared.give(),
          () => shared.give(),
        );
    };
    const ahead: RangeInFlight[] = [];
    let next = 0;
    const fill = (): void => {
      while (!stopped.aborted && ahead.length < readsAhead && next < ranges.length) {
        const own = ahead.every((range) => range.shared);
        if (!own && !shared.tryTake()) return;
        ahead.push(start(ranges[next++]!, !own));
      }
    };
    try {
      fill();
      while (ahead.length > 0) {
        const current = ahead[0]!;
        for (const slot of current.slots) {
          const { raw, stored } = await Promise.race([abandoned, slot.promise]);
          slot.consumed = true;
          try {
            // A chunk already checked when the server stopped is not written either.
            if (stopped.aborted) throw noLongerRead();
            await write(raw);
          } finally {
            buffers.release(stored);
          }
          onBytes(raw.length);
        }
        await Promise.race([abandoned, current.read]);
        settled(ahead.shift()!);
        fill();
      }
    } finally {
      stopped.removeEventListener('abort', stop);
      // A feed that stopped early leaves reads in flight: their chunks go back to the pool once they settle.
      for (const range of ahead) {
        settled(range);
        for (const slot of range.slots)
          if (!slot.consumed)
            slot.promise.then(
              ({ stored }) => buffers.release(stored),
              () => undefined,
            );
      }
    }
  };
}

/** Feeds an image from a file (one the restore downloaded and checked before CRIU started), a chunk buffer's size at a time. */
export function fileImageFeed(file: string): ImageFeed {
  return async (write) => {
    const handle = await open(file, 'r');
    try {
      for (;;) {
        // A new buffer each time: a write holds its bytes until the pipe took them.
        const buffer = Buffer.allocUnsafe(CHUNK_BUFFER_BYTES);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) return;
        await write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  };
}
