// Cuts a byte stream into content-defined chunks at 512-byte block boundaries, so that shifted data re-syncs.
//
// CRIU's page images shift by whole pages when a mapping grows, and a tar stream shifts by whole 512-byte
// blocks when a file is added; cutting only between 512-byte blocks, at places chosen by the content of the
// blocks just before, puts the same cuts around unchanged data wherever it moved. A rolling hash over
// per-block fingerprints (each sampling 8 words of its block) does this at several GB/s in JavaScript, where a
// byte-level rolling hash manages about 150 MB/s.

export const BLOCK_BYTES = 512;

export interface ChunkerOptions {
  /** No cut before this many bytes (a multiple of 512). */
  minBytes: number;
  /** Bits of the rolling hash that must be zero for a cut: about 2^bits blocks between cuts after minBytes. */
  maskBits: number;
  /** Always cut here (a multiple of 512). */
  maxBytes: number;
}

/**
 * 512 KiB minimum, about 1.5 MiB on average, 4 MiB at most: small enough that a change costs little to
 * re-send, large enough that a 2 GiB task is about 1,400 chunks to hash and list (they travel in packs).
 */
export const DEFAULT_CHUNKER: ChunkerOptions = { minBytes: 512 << 10, maskBits: 11, maxBytes: 4 << 20 };

/** Receives a chunk: a view into the chunker's own buffer, valid until the promise returned settles. */
export type ChunkConsumer = (chunk: Buffer) => Promise<void>;

/**
 * Finds the content-defined cuts of a stream, block by block, holding none of its bytes: only the rolling hash
 * and how far the current chunk has been looked at. ContentChunker keeps the bytes of the current chunk in a
 * buffer of its own; the image follower keeps them in the image file, and reads a chunk back once it is cut.
 */
export class CutFinder {
  readonly options: ChunkerOptions;
  private readonly mask: number;
  private rolling = 0;
  /** Bytes of the current chunk already looked at: whole blocks. */
  private looked = 0;

  constructor(options: ChunkerOptions = DEFAULT_CHUNKER) {
    if (options.minBytes % BLOCK_BYTES !== 0 || options.maxBytes % BLOCK_BYTES !== 0 || options.minBytes > options.maxBytes) {
      throw new Error(`chunker sizes must be multiples of ${BLOCK_BYTES} with min <= max: ${JSON.stringify(options)}`);
    }
    this.options = options;
    this.mask = (1 << options.maskBits) - 1;
  }

  /** Bytes of the current chunk already looked at (whole blocks); the bytes from here on are still to be looked at. */
  get scannedBytes(): number {
    return this.looked;
  }

  /**
   * Looks at the whole blocks of `chunk` (the current chunk's bytes from its start) past `scannedBytes`, and
   * returns the length of the chunk at the first cut among them, or 0 when they hold none. After a cut the
   * next chunk starts at that length: the caller passes its bytes from there on the next call.
   */
  findCut(chunk: Buffer, length: number = chunk.length): number {
    while (this.looked + BLOCK_BYTES <= length) {
      let fingerprint = 0x811c9dc5;
      for (let k = 0; k < BLOCK_BYTES; k += 64) fingerprint = Math.imul(fingerprint ^ chunk.readUInt32LE(this.looked + k), 0x01000193);
      this.rolling = ((this.rolling << 1) + (fingerprint >>> 0)) >>> 0;
      this.looked += BLOCK_BYTES;
      if (this.looked >= this.options.maxBytes || (this.looked >= this.options.minBytes && (this.rolling & this.mask) === 0)) {
        const cut = this.looked;
        this.restart();
        return cut;
      }
    }
    return 0;
  }

  /** Starts a new chunk (at a cut, or after the stream ended). */
  restart(): void {
    this.looked = 0;
    this.rolling = 0;
  }
}

/**
 * Cuts a stream into chunks in one buffer of its own, reused for every chunk (it grows to the largest chunk
 * seen, at most `maxBytes`): the bytes are copied once, and nothing is allocated per chunk. Each chunk is
 * handed to the consumer and awaited before the buffer is written again.
 */
export class ContentChunker {
  private readonly finder: CutFinder;
  private buffer = Buffer.allocUnsafeSlow(0);
  /** Bytes of the next chunk held in `buffer`. */
  private filled = 0;

  constructor(options: ChunkerOptions = DEFAULT_CHUNKER) {
    this.finder = new CutFinder(options);
  }

  /** Adds bytes, handing each chunk they complete to `consume` in order. */
  async push(data: Buffer, consume: ChunkConsumer): Promise<void> {
    const maxBytes = this.finder.options.maxBytes;
    for (let at = 0; at < data.length; ) {
      const take = Math.min(maxBytes - this.filled, data.length - at);
      this.reserve(this.filled + take);
      data.copy(this.buffer, this.filled, at, at + take);
      this.filled += take;
      at += take;
      for (let cut = this.finder.findCut(this.buffer, this.filled); cut > 0; cut = this.finder.findCut(this.buffer, this.filled)) {
        await consume(this.buffer.subarray(0, cut));
        // What followed the cut starts the next chunk.
        this.buffer.copy(this.buffer, 0, cut, this.filled);
        this.filled -= cut;
      }
    }
  }

  /** Ends the stream: hands over the last chunk, if any bytes are left. */
  async flush(consume: ChunkConsumer): Promise<void> {
    this.finder.restart();
    if (this.filled === 0) return;
    const last = this.buffer.subarray(0, this.filled);
    this.filled = 0;
    await consume(last);
  }

  /** Grows the buffer to hold `bytes`, keeping what it holds. */
  private reserve(bytes: number): void {
    if (bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.min(this.finder.options.maxBytes, Math.max(bytes, 2 * this.buffer.length, 64 << 10)));
    this.buffer.copy(grown, 0, 0, this.filled);
    this.buffer = grown;
  }
}
