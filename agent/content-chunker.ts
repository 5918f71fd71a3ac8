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
 * Cuts a stream into chunks in one buffer of its own, reused for every chunk (it grows to the largest chunk
 * seen, at most `maxBytes`): the bytes are copied once, and nothing is allocated per chunk. Each chunk is
 * handed to the consumer and awaited before the buffer is written again.
 */
export class ContentChunker {
  private readonly options: ChunkerOptions;
  private readonly mask: number;
  private buffer = Buffer.allocUnsafeSlow(0);
  /** Bytes of the next chunk held in `buffer`. */
  private filled = 0;
  /** Of those, the whole blocks already looked at. */
  private scanned = 0;
  private rolling = 0;

  constructor(options: ChunkerOptions = DEFAULT_CHUNKER) {
    if (options.minBytes % BLOCK_BYTES !== 0 || options.maxBytes % BLOCK_BYTES !== 0 || options.minBytes > options.maxBytes) {
      throw new Error(`chunker sizes must be multiples of ${BLOCK_BYTES} with min <= max: ${JSON.stringify(options)}`);
    }
    this.options = options;
    this.mask = (1 << options.maskBits) - 1;
  }

  /** Adds bytes, handing each chunk they complete to `consume` in order. */
  async push(data: Buffer, consume: ChunkConsumer): Promise<void> {
    for (let at = 0; at < data.length; ) {
      const take = Math.min(this.options.maxBytes - this.filled, data.length - at);
      this.reserve(this.filled + take);
      data.copy(this.buffer, this.filled, at, at + take);
      this.filled += take;
      at += take;
      while (this.scanned + BLOCK_BYTES <= this.filled) {
        let fingerprint = 0x811c9dc5;
        for (let k = 0; k < BLOCK_BYTES; k += 64) fingerprint = Math.imul(fingerprint ^ this.buffer.readUInt32LE(this.scanned + k), 0x01000193);
        this.rolling = ((this.rolling << 1) + (fingerprint >>> 0)) >>> 0;
        this.scanned += BLOCK_BYTES;
        if (this.scanned >= this.options.maxBytes || (this.scanned >= this.options.minBytes && (this.rolling & this.mask) === 0)) {
          await consume(this.buffer.subarray(0, this.scanned));
          // What followed the cut starts the next chunk.
          this.buffer.copy(this.buffer, 0, this.scanned, this.filled);
          this.filled -= this.scanned;
          this.scanned = 0;
          this.rolling = 0;
        }
      }
    }
  }

  /** Ends the stream: hands over the last chunk, if any bytes are left. */
  async flush(consume: ChunkConsumer): Promise<void> {
    if (this.filled === 0) return;
    const last = this.buffer.subarray(0, this.filled);
    this.filled = 0;
    this.scanned = 0;
    this.rolling = 0;
    await consume(last);
  }

  /** Grows the buffer to hold `bytes`, keeping what it holds. */
  private reserve(bytes: number): void {
    if (bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.min(this.options.maxBytes, Math.max(bytes, 2 * this.buffer.length, 64 << 10)));
    this.buffer.copy(grown, 0, 0, this.filled);
    this.buffer = grown;
  }
}
