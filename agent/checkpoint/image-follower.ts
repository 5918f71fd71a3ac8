// Reads CRIU's image files while `criu dump` is still writing them, chunking and uploading as they grow.
//
// CRIU writes each image file once, front to back (that is what lets it stream images to a pipe), so the
// bytes below a file's current size are final: they can travel while the dump goes on, and the checkpoint
// takes about as long as the slower of dumping and uploading rather than their sum.
//
// A tree of many processes has many image files growing in turn (pages, pagemap, core, mm... of each process),
// so the follower holds no bytes and no descriptor per file. For each file it keeps only where its current chunk
// starts and the state of the cut finder (the bytes of that chunk stay in the file, which CRIU does not change
// below its size); a file that grew is opened, read on from there into the follower's one buffer, and closed
// again. When a cut is found, the part of the chunk read on an earlier look is read back into the buffer in
// front of the rest. So the agent's memory and descriptors stay the same for 1 or 1,000 image files, and the
// chunks are cut where the content says, exactly where one ContentChunker over the whole file would cut them:
// the next checkpoint finds them again.
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CutFinder, DEFAULT_CHUNKER, type ChunkerOptions } from '../transfer/content-chunker.ts';
import type { ChunkUploader } from '../transfer/chunk-uploader.ts';
import type { ImageFile } from '../store/manifest.ts';
import { systemClock, type Clock } from '../shared/clock.ts';

/** Bytes asked for in one read: a cut moves at most this much of the buffer to its front. */
const READ_BYTES = 256 * 1024;

interface FollowedFile {
  /** Its chunks so far; `bytes` is how far the file has been read (its size at the last look). */
  image: ImageFile;
  /** Where in the file the chunk being cut starts. */
  chunkStart: number;
  /** Where the content-defined cuts of the file are, up to `chunkStart` + its scanned bytes. */
  finder: CutFinder;
}

export interface FollowOptions {
  imagesDir: string;
  /** Where the chunks go (only `addingTo` is used). */
  uploader: Pick<ChunkUploader, 'addingTo'>;
  /** Names in the directory that are not images (CRIU's log). */
  exclude: ReadonlySet<string>;
  /** How often to look for new bytes while the dump runs. */
  pollMs?: number;
  /** Whose time `pollMs` is (default: the system's). */
  clock?: Clock;
  /** How chunks are cut: spotsnap's default, as for every stream of a snapshot. */
  chunker?: ChunkerOptions;
}

/** What the follower holds now and the most it ever held at once, whatever the number of image files. */
export interface FollowerCounters {
  /** Image files open now (one at most), and the most at once. */
  openHandles: number;
  mostOpenHandles: number;
  /** Bytes of image files held in the agent's memory now (at most one chunk), and the most at once. */
  heldBytes: number;
  mostHeldBytes: number;
  /** The buffer that holds them: one chunk's largest size, allocated once. */
  bufferBytes: number;
  /** Image files seen so far. */
  files: number;
  /** Bytes read from image files, counting the parts of chunks read back at their cut. */
  readBytes: number;
  /** Looks through the directory completed. */
  passes: number;
}

/**
 * Follows one dump's image directory. `counters` tells what it holds, for the log and the tests.
 */
export class ImageFollower {
  readonly counters: FollowerCounters;
  private readonly options: FollowOptions;
  private readonly chunker: ChunkerOptions;
  private readonly files = new Map<string, FollowedFile>();
  private readonly buffer: Buffer;

  constructor(options: FollowOptions) {
    this.options = options;
    this.chunker = options.chunker ?? DEFAULT_CHUNKER;
    new CutFinder(this.chunker); // checks the sizes before anything is allocated
    this.buffer = Buffer.allocUnsafeSlow(this.chunker.maxBytes);
    this.counters = { openHandles: 0, mostOpenHandles: 0, heldBytes: 0, mostHeldBytes: 0, bufferBytes: this.buffer.length, files: 0, readBytes: 0, passes: 0 };
  }

  /**
   * Follows the directory until `dumpDone` settles, then reads what is left and cuts the last chunk of each
   * file. Resolves with every image file and its chunks, by name; rejects if the dump or an upload fails (no
   * file is left open).
   */
  async follow(dumpDone: Promise<unknown>): Promise<ImageFile[]> {
    let dumpEnded = false;
    let dumpError: unknown;
    void dumpDone.then(
      () => (dumpEnded = true),
      (error: unknown) => {
        dumpEnded = true;
        dumpError = error ?? new Error('criu dump failed');
      },
    );
    for (;;) {
      const ended = dumpEnded;
      if (dumpError !== undefined) throw dumpError;
      // Once the dump has ended, this look reads every file to its end and cuts its last chunk.
      await this.pass(ended);
      if (ended) break;
      await (this.options.clock ?? systemClock).sleep(this.options.pollMs ?? 50);
    }
    return [...this.files.values()].map((f) => f.image).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Reads on every file that grew; with `last`, every file to its end, its last chunk included. */
  private async pass(last: boolean): Promise<void> {
    const { imagesDir, exclude } = this.options;
    const names = (await readdir(imagesDir)).filter((name) => !exclude.has(name)).sort();
    const sizes = await Promise.all(names.map((name) => this.sizeOf(name)));
    for (const [i, name] of names.entries()) {
      const size = sizes[i];
      let file = this.files.get(name);
      if (size === undefined) {
        if (file) throw new Error(`CRIU image ${name} disappeared from ${imagesDir} while it was read`);
        continue;
      }
      if (!file) {
        file = { image: { name, bytes: 0, chunks: [] }, chunkStart: 0, finder: new CutFinder(this.chunker) };
        this.files.set(name, file);
        this.counters.files++;
      }
      if (size < file.image.bytes) throw new Error(`CRIU image ${name} shrank from ${file.image.bytes} to ${size} bytes while it was read`);
      if (size > file.image.bytes || (last && file.chunkStart < size)) await this.readOn(file, size, last);
    }
    this.counters.passes++;
  }

  /** The size of a regular file in the directory; undefined for anything else, or a name that has gone. */
  private async sizeOf(name: string): Promise<number | undefined> {
    try {
      const info = await stat(path.join(this.options.imagesDir, name));
      return info.isFile() ? info.size : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Reads the file from its scanned part of the current chunk up to `size`, handing on each chunk cut; with
   * `last`, the rest is its last chunk. The buffer holds the current chunk from its start: its first
   * `unloaded` bytes were read on an earlier look and are only read back when the chunk is cut.
   */
  private async readOn(file: FollowedFile, size: number, last: boolean): Promise<void> {
    const buffer = this.buffer;
    const consume = this.options.uploader.addingTo(file.image.chunks);
    let filled = file.finder.scannedBytes;
    let unloaded = filled;
    const handle = await open(path.join(this.options.imagesDir, file.image.name), 'r');
    this.opened(1);
    try {
      const cutAt = async (cut: number): Promise<void> => {
        await this.readExactly(handle, file, 0, unloaded, file.chunkStart);
        this.hold(filled);
        unloaded = 0;
        await consume(buffer.subarray(0, cut));
        // What followed the cut starts the next chunk.
        buffer.copy(buffer, 0, cut, filled);
        filled -= cut;
        file.chunkStart += cut;
        this.hold(filled);
      };
      while (file.chunkStart + filled < size) {
        const want = Math.min(READ_BYTES, buffer.length - filled, size - file.chunkStart - filled);
        const { bytesRead } = await handle.read(buffer, filled, want, file.chunkStart + filled);
        if (bytesRead === 0)
          throw new Error(`CRIU image ${file.image.name} ended at ${file.chunkStart + filled} bytes, below the ${size} it had, while it was read`);
        this.counters.readBytes += bytesRead;
        filled += bytesRead;
        this.hold(filled - unloaded);
        for (let cut = file.finder.findCut(buffer, filled); cut > 0; cut = file.finder.findCut(buffer, filled)) await cutAt(cut);
      }
      file.image.bytes = size;
      if (last && filled > 0) {
        file.finder.restart();
        await cutAt(filled);
      }
    } finally {
      this.hold(0);
      this.opened(-1);
      await handle.close().catch(() => undefined);
    }
  }

  /** Reads `length` bytes of the file at `position` into the buffer at `offset`. */
  private async readExactly(handle: FileHandle, file: FollowedFile, offset: number, length: number, position: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const { bytesRead } = await handle.read(this.buffer, offset + done, length - done, position + done);
      if (bytesRead === 0) throw new Error(`CRIU image ${file.image.name} ended at ${position + done} bytes while a chunk was read back from it`);
      this.counters.readBytes += bytesRead;
      done += bytesRead;
    }
  }

  private opened(change: number): void {
    this.counters.openHandles += change;
    this.counters.mostOpenHandles = Math.max(this.counters.mostOpenHandles, this.counters.openHandles);
  }

  private hold(bytes: number): void {
    this.counters.heldBytes = bytes;
    this.counters.mostHeldBytes = Math.max(this.counters.mostHeldBytes, bytes);
  }
}

/**
 * Follows the directory until `dumpDone` settles, then reads what is left. Resolves with every image file and
 * its chunks; rejects if the dump or an upload fails (after closing its files).
 */
export async function followImages(options: FollowOptions, dumpDone: Promise<unknown>): Promise<ImageFile[]> {
  return new ImageFollower(options).follow(dumpDone);
}
