// How a chunk is stored: its identity is the digest of its raw bytes (chunk-digest.ts); its bytes go up zstd-compressed, or raw when that does not pay.
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { chunkDigest } from './chunk-digest.ts';

/** 'zstd': one zstd frame of the raw bytes. 'raw': the bytes themselves. */
export type ChunkEncoding = 'raw' | 'zstd';

/**
 * zstd's level 1: about 700 MiB/s a core on memory here, and as small as level 3 on text; the level that keeps
 * a checkpoint's hashing and compression within a core's share of the upload.
 */
export const ZSTD_LEVEL = 1;

/** A chunk is stored compressed only if that saves at least 1/8 of its bytes: less is not worth a decompression. */
export const WORTHWHILE_SAVING = 1 / 8;

export interface EncodedChunk {
  /** The digest of the raw bytes (`algorithm:hex`): the chunk's identity, whatever its encoding. */
  digest: string;
  /** Raw bytes. */
  bytes: number;
  encoding: ChunkEncoding;
  /** The bytes as stored: `raw` itself when the encoding is raw. */
  stored: Buffer;
  /** Milliseconds spent in zstd, when it was tried (whether or not it paid). */
  zstdMs?: number;
}

/**
 * One zstd frame of `data`. The output buffer is the input's size (a worthwhile frame fits in it): zlib's
 * default of 16 KiB pieces, concatenated, cost a chunk's worth of garbage per chunk and grew the agent by about
 * 100 MiB on compressible memory.
 */
function zstd(data: Buffer): Buffer {
  return zstdCompressSync(data, {
    params: { [constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL, [constants.ZSTD_c_checksumFlag]: 0 },
    chunkSize: Math.max(64, data.length),
  });
}

/** Bytes of each of three samples whose byte entropy decides whether a chunk is worth compressing. */
const PROBE_BYTES = 4096;

/**
 * Bits per byte above which a sample counts as incompressible: random bytes measure 7.95 over 4 KiB, text and
 * machine code well under 7; zstd saves less than an eighth above about 7.3.
 */
const INCOMPRESSIBLE_BITS_PER_BYTE = 7.3;

function bitsPerByte(sample: Buffer): number {
  const counts = new Uint32Array(256);
  for (let i = 0; i < sample.length; i++) counts[sample[i]!]!++;
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= (c / sample.length) * Math.log2(c / sample.length);
  return bits;
}

/**
 * Whether compressing `raw` may pay: the byte entropy of three samples (start, middle, end), 12 KiB of a 1 MiB
 * chunk. Incompressible memory (random data, already-compressed buffers) then costs a few microseconds instead
 * of a compression whose result is thrown away; a chunk with any compressible sample is tried.
 */
export function mayCompress(raw: Buffer): boolean {
  if (raw.length < 4 * PROBE_BYTES) return true;
  const starts = [0, (raw.length >> 1) - (PROBE_BYTES >> 1), raw.length - PROBE_BYTES];
  return starts.some((s) => bitsPerByte(raw.subarray(s, s + PROBE_BYTES)) < INCOMPRESSIBLE_BITS_PER_BYTE);
}

/** Encodes a chunk whose digest is known to be `digest`: compressed if that saves enough, else raw. */
export function encodeKnownHash(raw: Buffer, digest: string, compress: boolean): EncodedChunk {
  if (compress && raw.length >= 512 && mayCompress(raw)) {
    const started = performance.now();
    const packed = zstd(raw);
    const zstdMs = performance.now() - started;
    if (packed.length <= raw.length * (1 - WORTHWHILE_SAVING)) return { digest, bytes: raw.length, encoding: 'zstd', stored: packed, zstdMs };
    return { digest, bytes: raw.length, encoding: 'raw', stored: raw, zstdMs };
  }
  return { digest, bytes: raw.length, encoding: 'raw', stored: raw };
}

export function encodeChunk(raw: Buffer, compress: boolean): EncodedChunk {
  return encodeKnownHash(raw, chunkDigest(raw), compress);
}

/** The raw bytes of a stored chunk; throws, naming the chunk, when they cannot be its `bytes` raw bytes. */
export function decodeChunk(stored: Buffer, encoding: ChunkEncoding, bytes: number, what: string): Buffer {
  if (encoding === 'raw') {
    if (stored.length !== bytes) throw new Error(`${what}: ${stored.length} bytes stored raw, the manifest says ${bytes}`);
    return stored;
  }
  let raw: Buffer;
  try {
    raw = zstdDecompressSync(stored, { maxOutputLength: bytes + 1, chunkSize: Math.max(64, bytes + 1) });
  } catch (error) {
    throw new Error(`${what}: its zstd frame of ${stored.length} bytes cannot be decompressed (${error instanceof Error ? error.message : String(error)})`);
  }
  if (raw.length !== bytes) throw new Error(`${what}: decompresses to ${raw.length} bytes, the manifest says ${bytes}`);
  return raw;
}
