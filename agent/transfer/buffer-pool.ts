// Pools of large buffers of one size, reused by every transfer of the process: chunk buffers and socket read buffers.
//
// A checkpoint's page windows and a restore's gathered chunks are chunk buffers (CHUNK_BUFFER_BYTES), which
// travel to the workers and back. A window is sent to S3 as a part of its pack and comes back to the pool once
// the pack is stored; a spilled pack is read back into them too. Each connection reads into a buffer of its own
// (kept-alive-connections.ts). Taking them from a pool rather than allocating them per use keeps a process that
// transfers again (background checkpoints, a restored task interrupted once more, range after range of a
// restore) at one set, and buffers that are already resident cost no page faults when reused.

/** A pack's largest size (and the largest ranged read of a restore). */
export const PACK_BYTES = 8 << 20;

/** Buffers of one size. As many are kept as were ever out at once, so the next use of as many allocates none. */
export class BufferPool {
  readonly bytes: number;
  private readonly spare: Buffer[] = [];
  /** Buffers taken and not yet given back, and the most there ever were at once. */
  private out = 0;
  private mostOut = 0;

  constructor(bytes: number) {
    this.bytes = bytes;
  }

  /** A buffer of `bytes`, reused when one is spare. Give it back with `release` when done. */
  take(): Buffer {
    this.out++;
    this.mostOut = Math.max(this.mostOut, this.out);
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  /**
   * Returns a buffer from `take`, or any view of its memory (a part of it, or one that came back from a worker
   * thread as a new object): the whole of it is the pool's again, and nothing may use it afterwards. Memory of
   * another size, or memory already given back, is ignored.
   */
  release(view: Uint8Array): void {
    const memory = view.buffer;
    if (!(memory instanceof ArrayBuffer) || memory.byteLength !== this.bytes || this.spare.some((b) => b.buffer === memory)) return;
    this.out = Math.max(0, this.out - 1);
    const whole = Buffer.isBuffer(view) && view.byteOffset === 0 && view.length === this.bytes;
    if (this.spare.length < this.mostOut) this.spare.push(whole ? view : Buffer.from(memory));
  }
}

/** The size of a chunk buffer: one page window of a checkpoint (WINDOW_BYTES), the most a page chunk holds. */
export const CHUNK_BUFFER_BYTES = 1 << 20;

/**
 * Chunk buffers, shared by a checkpoint's page windows (held by their packs until stored: some
 * (SPOTSNAP_PACKS_IN_FLIGHT + 1) x 8 plus the chunks being encoded) and a restore's gathered chunks: the
 * restored task's next checkpoint fills the windows its restore gathered chunks in, rather than holding both
 * sets at once.
 */
export const chunkBuffers = new BufferPool(CHUNK_BUFFER_BYTES);
