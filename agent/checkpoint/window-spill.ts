// While a background checkpoint's task is frozen, its page windows go raw to a file in the work dir as fast as they come, and through the chunk pipeline once the task runs on.
//
// With the page server, CRIU dumps at the agent's pace: a task stays frozen while every window is hashed,
// packed and sent. Appending a window to a file costs a fraction of that, so the freeze comes close to CRIU's own
// dump. The windows are then read back in order, once the task runs again, and go through the same pipeline
// (the same chunks, the same dedup). The file is bounded by the spill limit; past it, or once the work dir
// takes windows more slowly than the uploads would (a throttled disk), the windows spilled so far are sent
// first and the rest go straight to the pipeline, so their order in each image never changes.
// On tmpfs the file can be written ahead with zeros before the freeze (reserve()): the kernel then allocates
// and clears its pages while the task still runs, and a window's write during the freeze is only a copy.
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { chunkBuffers } from '../transfer/buffer-pool.ts';
import type { PageSink, ReceivedImage } from './page-receiver.ts';

/** Windows written before the work dir's rate is judged against the uploads'. */
const RATE_SAMPLES = 8;

/**
 * Writes out at once: the socket is read on while the thread pool writes the windows before, so that CRIU
 * goes on dumping meanwhile (each one holds its window until written).
 */
const WRITES_IN_FLIGHT = 4;

export interface WindowSpillOptions {
  /** The file the windows go to (its directory is made; the file is removed once read back or discarded). */
  file: string;
  /** The most bytes it may hold. */
  limitBytes: number;
  /** How fast the uploads take bytes, bytes per ms, when measured: spilling stops when the work dir is slower. */
  uploadBytesPerMs?: () => number | undefined;
  /** Bytes the same limit holds elsewhere (the checkpoint's spilled packs). */
  othersHeldBytes?: () => number;
  now?: () => number;
  /** Opens the new file (default: fs.open, exclusive, 0600); tests give a handle that refuses some writes. */
  open?: (file: string) => Promise<FileHandle>;
}

interface SpilledWindow {
  image: ReceivedImage;
  at: number;
  length: number;
  /** The window itself while its write is out, and for good when that write failed: it is then sent from memory. */
  buffer: Buffer | undefined;
}

export class WindowSpill implements PageSink {
  private readonly inner: PageSink;
  private readonly options: WindowSpillOptions;
  private readonly now: () => number;
  private readonly windows: SpilledWindow[] = [];
  private readonly writing = new Set<Promise<void>>();
  private handle: Promise<FileHandle> | undefined;
  private spilling = true;
  private draining: Promise<void> | undefined;
  /** Bytes given a place in the file (written, or being written). */
  private placedBytes = 0;
  /** Bytes of zeros written ahead of the windows (reserve()). */
  private reservedBytes = 0;
  private writtenBytes = 0;
  /** How long at least one write was out: the work dir's busy time, which its rate is judged by. */
  private busyMs = 0;
  private busySince = 0;
  /** The most bytes the file held (windows, or room written ahead for them), and how many windows it took, for the log. */
  mostBytes = 0;
  spilledWindows = 0;
  /** Why the work dir stopped taking windows, when it refused one. */
  writeError: string | undefined;
  /** Why the work dir refused the zeros written ahead, when it did. */
  reserveRefused: string | undefined;

  constructor(inner: PageSink, options: WindowSpillOptions) {
    this.inner = inner;
    this.options = options;
    this.now = options.now ?? (() => performance.now());
  }

  /** What the file holds until it is removed, read back or not: the windows, or the room written ahead for them. */
  get heldBytes(): number {
    return this.handle ? Math.max(this.placedBytes, this.reservedBytes) : 0;
  }

  /**
   * Writes up to `bytes` of zeros into the file, at most the limit, before the task is frozen, so that the
   * windows' writes during the freeze find their pages already there. On tmpfs a write into a new page first
   * allocates and clears it, and on a VM whose memory went back to its hypervisor that first touch was about
   * half a second per GiB (`npm run bench`): that cost moves out of the freeze. Only for a work dir in memory:
   * on a disk the zeros would be real writes. A refusal (full) stops it quietly: the windows then spill as far
   * as the work dir takes them, as without it. Returns the bytes written.
   */
  async reserve(bytes: number): Promise<number> {
    const target = Math.min(bytes, this.options.limitBytes - (this.options.othersHeldBytes?.() ?? 0));
    if (!(target > 0) || this.placedBytes > 0) return 0;
    const zeros = this.inner.take();
    zeros.fill(0);
    let next = 0;
    let writtenTo = 0;
    let refusedAt = target;
    // A refused write ends the reservation, not the spill: the windows still fill what was reserved, and one
    // refused past it is sent from memory as usual.
    const writeAhead = async (): Promise<void> => {
      while (this.reserveRefused === undefined && next < target) {
        const at = next;
        const length = Math.min(zeros.length, target - at);
        next += length;
        const refused = await this.writeAt(zeros, length, at);
        if (refused !== undefined) {
          this.reserveRefused ??= refused;
          refusedAt = Math.min(refusedAt, at);
          return;
        }
        writtenTo = Math.max(writtenTo, at + length);
      }
    };
    try {
      await Promise.all(Array.from({ length: WRITES_IN_FLIGHT }, writeAhead));
    } finally {
      chunkBuffers.release(zeros);
    }
    // Only the room before the first refusal counts: past it, writes out at once may have left holes.
    this.reservedBytes = Math.min(writtenTo, refusedAt);
    this.mostBytes = Math.max(this.mostBytes, this.reservedBytes);
    return this.reservedBytes;
  }

  take(): Buffer {
    return this.inner.take();
  }

  async chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
    while (this.spilling && this.writing.size >= WRITES_IN_FLIGHT) await Promise.race(this.writing);
    const room = this.options.limitBytes - (this.options.othersHeldBytes?.() ?? 0);
    if (this.spilling && this.placedBytes + length <= room && this.keepsUp()) {
      this.spill(image, buffer, length);
      return;
    }
    // Full, slower than the uploads, or refused: what waits in the file goes first, in order.
    await this.drain();
    await this.inner.chunk(image, buffer, length);
  }

  /** Sends every spilled window on through the pipeline, in order, and removes the file; the next windows go straight there. */
  drain(): Promise<void> {
    this.spilling = false;
    this.draining ??= this.settled().then(() => this.readBack());
    return this.draining;
  }

  /** Removes the file without sending what it holds (the checkpoint failed). */
  async discard(): Promise<void> {
    this.spilling = false;
    await this.settled();
    for (const window of this.windows.splice(0)) if (window.buffer) chunkBuffers.release(window.buffer);
    await this.close();
  }

  private spill(image: ReceivedImage, buffer: Buffer, length: number): void {
    const window: SpilledWindow = { image, at: this.placedBytes, length, buffer };
    this.windows.push(window);
    this.placedBytes += length;
    if (this.writing.size === 0) this.busySince = this.now();
    const write = this.write(buffer, length, window.at).then((written) => {
      this.writing.delete(write);
      if (this.writing.size === 0) this.busyMs += this.now() - this.busySince;
      if (!written) return;
      this.writtenBytes += length;
      this.mostBytes = Math.max(this.mostBytes, this.writtenBytes);
      this.spilledWindows++;
      window.buffer = undefined;
      chunkBuffers.release(buffer);
    });
    this.writing.add(write);
  }

  /** Every write out has ended (a write never rejects: write() says whether it went). */
  private async settled(): Promise<void> {
    while (this.writing.size > 0) await Promise.all([...this.writing]);
  }

  /** Whether the work dir takes windows at least as fast as the uploads take bytes (true until both are known). */
  private keepsUp(): boolean {
    const busyMs = this.busyMs + (this.writing.size > 0 ? this.now() - this.busySince : 0);
    if (this.spilledWindows < RATE_SAMPLES || !(busyMs > 0)) return true;
    const upload = this.options.uploadBytesPerMs?.();
    return upload === undefined || this.writtenBytes / busyMs >= upload;
  }

  /**
   * Writes the window at `at`; false, and no more spilling, when the work dir refuses it (full, or gone): the
   * window stays in its buffer and goes on through the pipeline, so a full disk costs the freeze, never the
   * checkpoint.
   */
  private async write(buffer: Buffer, length: number, at: number): Promise<boolean> {
    const refused = await this.writeAt(buffer, length, at);
    if (refused === undefined) return true;
    this.spilling = false;
    this.writeError ??= refused;
    return false;
  }

  /** Writes `length` bytes of `buffer` at `at` of the file (opened on first use); why not, when the work dir refused. */
  private async writeAt(buffer: Buffer, length: number, at: number): Promise<string | undefined> {
    try {
      this.handle ??= this.openFile();
      const handle = await this.handle;
      for (let done = 0; done < length; ) done += (await handle.write(buffer, done, length - done, at + done)).bytesWritten;
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  private async openFile(): Promise<FileHandle> {
    await mkdir(path.dirname(this.options.file), { recursive: true });
    return this.options.open ? this.options.open(this.options.file) : open(this.options.file, 'wx+', 0o600);
  }

  private async readBack(): Promise<void> {
    try {
      // The room written ahead that no window took goes first, so that it is not held while the rest is sent.
      // (Room there was means the file opened; a truncate that fails only holds it until the file goes.)
      if (this.handle && this.reservedBytes > this.placedBytes) {
        const truncated = await (await this.handle).truncate(this.placedBytes).then(
          () => true,
          () => false,
        );
        if (truncated) this.reservedBytes = this.placedBytes;
      }
      for (const window of this.windows.splice(0)) {
        if (window.buffer) {
          await this.inner.chunk(window.image, window.buffer, window.length);
          continue;
        }
        const handle = await this.handle!;
        const buffer = this.inner.take();
        try {
          for (let done = 0; done < window.length; ) {
            const { bytesRead } = await handle.read(buffer, done, window.length - done, window.at + done);
            if (bytesRead === 0) throw new Error(`${this.options.file} ended at ${window.at + done}, short of a spilled window`);
            done += bytesRead;
          }
        } catch (error) {
          chunkBuffers.release(buffer);
          throw error;
        }
        await this.inner.chunk(window.image, buffer, window.length);
      }
    } finally {
      await this.close();
    }
  }

  private async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.then((h) => h.close()).catch(() => undefined);
    await rm(this.options.file, { force: true }).catch(() => undefined);
  }
}
