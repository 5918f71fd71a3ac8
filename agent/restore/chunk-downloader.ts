// Reassembles chunked streams from S3: image files written at their offsets in parallel, or one stream in order.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { storedLength, type ChunkRef, type ImageFile } from '../store/manifest.ts';
import { sharedChunkWorkers, type ChunkWorkers } from '../transfer/chunk-workers.ts';
import type { BodySink } from '../transfer/direct-range-get.ts';
import { ChecksumMismatchError, type SnapshotStore } from '../store/snapshot-store.ts';
import { CHUNK_BUFFER_BYTES, chunkBuffers, PACK_BYTES } from '../transfer/buffer-pool.ts';
import { autoPacksInFlight } from '../transfer/chunk-uploader.ts';

/** What reassembly needs of the job's store: ranged reads of packs, and single verified chunks. */
export type ChunkSource = Pick<SnapshotStore, 'readPackRange' | 'getChunk'>;

/** Where one chunk's bytes go: an image file (by index) at an offset. */
export interface Destination {
  image: number;
  offset: number;
}

/** One ranged read: chunks that lie back to back in one pack, each with every place it goes. */
export interface PackRange {
  pack: string;
  offset: number;
  bytes: number;
  chunks: Array<{ ref: ChunkRef; destinations: Destination[] }>;
}

/**
 * Plans the reads for a set of image files: each distinct chunk is read once, and chunks stored back to back
 * in a pack are read together, up to `maxBytes` a read (a whole pack, for a first checkpoint's images).
 */
export function planPackRanges(images: readonly ImageFile[], maxBytes = PACK_BYTES): PackRange[] {
  const byChunk = new Map<string, { ref: ChunkRef; destinations: Destination[] }>();
  images.forEach((image, index) => {
    let offset = 0;
    for (const ref of image.chunks) {
      const entry = byChunk.get(ref.digest) ?? { ref, destinations: [] };
      entry.destinations.push({ image: index, offset });
      byChunk.set(ref.digest, entry);
      offset += ref.bytes;
    }
  });
  const sorted = [...byChunk.values()].sort((a, b) => a.ref.pack.localeCompare(b.ref.pack) || a.ref.offset - b.ref.offset);
  const ranges: PackRange[] = [];
  for (const entry of sorted) {
    const last = ranges.at(-1);
    const { pack, offset } = entry.ref;
    const bytes = storedLength(entry.ref);
    if (last && last.pack === pack && last.offset + last.bytes === offset && last.bytes + bytes <= maxBytes) {
      last.bytes += bytes;
      last.chunks.push(entry);
    } else {
      ranges.push({ pack, offset, bytes, chunks: [entry] });
    }
  }
  return ranges;
}

/**
 * What becomes of one chunk of a range once gathered: checked against its digest (and decompressed first when
 * compressed) on a worker thread while the range reads on, then put where it goes. Resolves with the bytes it
 * put there, once `stored` went back to `buffers` (it may be kept, when the handler failed with it).
 */
export type GatheredChunkHandler = (ref: ChunkRef, destinations: readonly Destination[], stored: Buffer, where: string) => Promise<number>;

/**
 * Receives one range as it comes off the socket, gathering each chunk in a buffer of `buffers` and handing it to
 * `handle` once whole, so that every core works on a restore. A retried range starts again from its first byte;
 * the chunks already handed over are skipped, so that each is handled once.
 */
export class RangeWriter implements BodySink {
  private readonly range: PackRange;
  private readonly handle: GatheredChunkHandler;
  /** Bytes of the range received so far in this attempt, and the chunk they end in. */
  private received = 0;
  private chunk = 0;
  /** Chunks handed over, over every attempt. */
  private handed = 0;
  /** The chunk being gathered. */
  private gathered: Buffer | undefined;
  private readonly handling: Array<Promise<void>> = [];
  /** Bytes put in place of the chunks handled so far (a chunk that goes to two places counts twice). */
  writtenBytes = 0;

  private readonly buffers: GatherBuffers;

  constructor(range: PackRange, buffers: GatherBuffers, handle: GatheredChunkHandler) {
    this.range = range;
    this.buffers = buffers;
    this.handle = handle;
  }

  /** Holds the socket back while every gather buffer is out (the workers have not caught up). */
  ready(): Promise<void> | undefined {
    return this.buffers.room();
  }

  /** The range failed for good: the chunk it was gathering goes back. */
  abandon(): void {
    if (this.gathered) this.buffers.release(this.gathered);
    this.gathered = undefined;
  }

  restart(): void {
    this.received = 0;
    this.chunk = 0;
    if (this.gathered) this.buffers.release(this.gathered);
    this.gathered = undefined;
  }

  /**
   * The rest of the chunk being gathered (its buffer taken now if need be): the socket reads straight into it.
   * Nothing while every gather buffer is out: the socket is paused then (`ready`), and the read after it goes
   * through the connection's own buffer; nothing either for a chunk already handed over in an earlier attempt.
   */
  into(bytes: number): Buffer | undefined {
    const entry = this.range.chunks[this.chunk];
    if (!entry || bytes <= 0 || this.chunk < this.handed || (!this.gathered && !this.buffers.hasRoom())) return undefined;
    const stored = storedLength(entry.ref);
    const within = this.received - (entry.ref.offset - this.range.offset);
    this.gathered ??= this.buffers.take(stored);
    return this.gathered.subarray(within, within + Math.min(stored - within, bytes));
  }

  write(piece: Buffer): void {
    let at = 0;
    while (at < piece.length) {
      const { ref, destinations } = this.range.chunks[this.chunk]!;
      const stored = storedLength(ref);
      const within = this.received - (ref.offset - this.range.offset);
      const part = piece.subarray(at, at + Math.min(piece.length - at, stored - within));
      at += part.length;
      this.received += part.length;
      const whole = within + part.length === stored;
      if (this.chunk < this.handed) {
        // A retry's bytes of a chunk an earlier attempt handed over.
        if (whole) this.chunk++;
        continue;
      }
      // Synchronous: the socket's read buffer is reused as soon as this returns. Bytes the socket read straight
      // into place (`into`) are not copied again.
      this.gathered ??= this.buffers.take(stored);
      const inPlace = part.buffer === this.gathered.buffer && part.byteOffset === this.gathered.byteOffset + within;
      if (!inPlace) part.copy(this.gathered, within);
      if (whole) {
        this.handOver(ref, destinations, this.gathered);
        this.gathered = undefined;
        this.chunk++;
        this.handed++;
      }
    }
  }

  /** Waits for the range's chunks to be checked and put in place; rejects with the first that failed. */
  async settled(): Promise<void> {
    const results = await Promise.allSettled(this.handling);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private handOver(ref: ChunkRef, destinations: readonly Destination[], stored: Buffer): void {
    const where = `pack ${this.range.pack} bytes ${ref.offset}+${storedLength(ref)}`;
    const done = this.handle(ref, destinations, stored, where).then((bytes) => {
      this.writtenBytes += bytes;
    });
    done.catch(() => undefined); // judged in settled()
    this.handling.push(done);
  }
}

/** Checks each gathered chunk on a worker, which writes it at every place it goes in `fds` once it passed. */
function writeToFiles(fds: readonly number[], workers: ChunkWorkers, buffers: GatherBuffers): GatheredChunkHandler {
  return (ref, destinations, stored, where) => {
    // The worker writes the chunk (to the page cache) only once it passed its check.
    const writes = destinations.map((to) => ({ fd: fds[to.image]!, position: to.offset }));
    return workers.decodeAndWrite(stored, ref.encoding ?? 'raw', ref.bytes, ref.digest, where, writes).then(
      (back) => {
        buffers.release(back);
        return ref.bytes * destinations.length;
      },
      (error: unknown) => {
        // The worker kept the buffer: it is not the pool's any more, but no longer out either.
        buffers.forget();
        throw ChecksumMismatchError.fromWorker(error instanceof Error ? error.message : String(error));
      },
    );
  };
}

/** Chunks smaller than this are gathered in a buffer of their own size, not a chunk buffer. */
const SMALLEST_POOLED_CHUNK = CHUNK_BUFFER_BYTES / 4;

/**
 * The buffers a restore gathers chunks in, handed back by the workers once a chunk is written: the process's
 * chunk buffers (a page window's chunk fits one; smaller chunks, and larger ones, files' up to 4 MiB, get a
 * buffer of their own), at most `limit` out at once. Past that, `room` holds the reads back until a worker
 * hands one back, so that a restore whose reads outpace its workers holds a few megabytes, not every range in
 * flight whole; and the restored task's next checkpoint fills its page windows in the same buffers.
 */
export class GatherBuffers {
  private readonly limit: number;
  private out = 0;
  private waiting: Array<() => void> = [];
  /** The most that were out at once, for the tests. */
  mostOut = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a restore needs at least one gather buffer, not ${limit}`);
    this.limit = limit;
  }

  /** A buffer of exactly `bytes` that owns its whole ArrayBuffer, so that it can be transferred to a worker. */
  take(bytes: number): Buffer {
    this.out++;
    this.mostOut = Math.max(this.mostOut, this.out);
    // A small chunk (a small image's) gets a buffer of its size: a read may hold dozens of them, and a chunk
    // buffer each would leave the pool that many megabytes larger for the life of the process.
    const pooled = bytes <= CHUNK_BUFFER_BYTES && bytes >= SMALLEST_POOLED_CHUNK;
    return pooled ? chunkBuffers.take().subarray(0, bytes) : Buffer.allocUnsafeSlow(bytes);
  }

  /** Gives a buffer from `take` back (one of its own size is not the pool's, and the pool ignores it). */
  release(view: Buffer): void {
    chunkBuffers.release(view);
    this.forget();
  }

  /** A buffer from `take` will not come back (a worker failed with it): it no longer counts as out. */
  forget(): void {
    this.out = Math.max(0, this.out - 1);
    if (this.out < this.limit) for (const wake of this.waiting.splice(0)) wake();
  }

  /** Whether fewer than `limit` buffers are out. */
  hasRoom(): boolean {
    return this.out < this.limit;
  }

  /** Nothing while fewer than `limit` buffers are out; else a promise that settles once one comes back. */
  room(): Promise<void> | undefined {
    if (this.hasRoom()) return undefined;
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

/** Ranged reads in flight below which a restore never goes with SPOTSNAP_PACKS_IN_FLIGHT=auto. */
const MIN_AUTO_READS_IN_FLIGHT = 4;

/**
 * Ranged reads a restore keeps in flight, from SPOTSNAP_PACKS_IN_FLIGHT as a checkpoint reads it: a number is
 * used as it is; `auto` is one per GiB of images, as a checkpoint's uploads (from 4, to 16). One S3 connection
 * carries some 100 MB/s, so a big task's restore needs as many as its checkpoint had to come back in as good a
 * time; each costs a 256 KiB read buffer and the chunk buffer it gathers in (see GatherBuffers).
 */
export function readsInFlight(setting: number | 'auto', imageBytes: number): number {
  return setting === 'auto' ? Math.max(MIN_AUTO_READS_IN_FLIGHT, autoPacksInFlight(imageBytes)) : setting;
}

/**
 * Writes every image file into `dir` from its chunks, `concurrency` ranged reads at a time, each read straight
 * from its socket into the files (memory stays at a read buffer per connection, whatever the range's size).
 * Every chunk is checked against its digest; the directory is fit for `criu restore` only once this resolves,
 * and a caller that sees it reject must discard it (a chunk that failed its check may be partly written).
 */
export async function downloadImages(
  store: Pick<ChunkSource, 'readPackRange'>,
  images: readonly ImageFile[],
  dir: string,
  concurrency = 4,
  onBytes: (bytes: number) => void = () => undefined,
  workers: ChunkWorkers = sharedChunkWorkers(),
): Promise<number> {
  const handles = await Promise.all(images.map((image) => open(path.join(dir, image.name), 'wx', 0o600)));
  const fds = handles.map((h) => h.fd);
  const ranges = planPackRanges(images);
  // Enough for each worker to have two chunks queued, as a checkpoint keeps them, and each read one it fills.
  const buffers = new GatherBuffers(2 * workers.size + concurrency);
  let next = 0;
  let bytes = 0;
  let failed = false;
  /** Ranges whose chunks may still be with the workers. */
  const unsettled = new Set<RangeWriter>();
  const worker = async (): Promise<void> => {
    while (next < ranges.length && !failed) {
      const range = ranges[next++]!;
      const writer = new RangeWriter(range, buffers, writeToFiles(fds, workers, buffers));
      unsettled.add(writer);
      try {
        await store.readPackRange(range.pack, range.offset, range.bytes, writer);
        await writer.settled();
        unsettled.delete(writer);
      } catch (error) {
        failed = true;
        writer.abandon();
        throw error;
      }
      // Counted once the whole range is in, so that a retried range counts once.
      bytes += writer.writtenBytes;
      onBytes(writer.writtenBytes);
    }
  };
  try {
    const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    for (const [index, image] of images.entries()) {
      const { size } = await handles[index]!.stat();
      if (size !== image.bytes) throw new Error(`image ${image.name} has ${size} bytes after its download, the manifest says ${image.bytes}`);
    }
    return bytes;
  } finally {
    // A failed range leaves its other chunks' writes to the workers: the files close only once those are done,
    // or a worker could write into whatever file reuses the descriptor.
    await Promise.allSettled([...unsettled].map((w) => w.settled()));
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  }
}

/** The chunks' bytes in order as one stream, fetching up to `prefetch` chunks ahead; each is verified before it is passed on. */
export function chunkedStream(store: Pick<ChunkSource, 'getChunk'>, chunks: readonly ChunkRef[], prefetch = 4): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const ahead: Array<Promise<Buffer>> = [];
    let next = 0;
    const fill = (): void => {
      while (ahead.length < prefetch && next < chunks.length) {
        const fetching = store.getChunk(chunks[next++]!);
        fetching.catch(() => undefined); // observed when its turn comes
        ahead.push(fetching);
      }
    };
    fill();
    while (ahead.length > 0) {
      const data = await ahead.shift()!;
      fill();
      yield data;
    }
  }
  return Readable.from(generate(), { objectMode: false });
}
